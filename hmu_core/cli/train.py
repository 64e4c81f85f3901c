"""``hmu train vq | mask | res | bamm | length | evaluator``: train the models into
official-layout dirs.

Arguments become a preset (``hmu_core.train.presets``; the evaluator's lives in
``hmu_core.train.evaluator``) plus ``RunOptions``; one library call does the work
(``train_vq``, ``train_transformer``, ``train_length``, ``train_evaluator``); this module prints a
summary. torch is imported inside ``run`` only, so ``hmu --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hmu_core.cli import common
from hmu_core.errors import ConfigError

_EPILOG = """examples:
  hmu data synth --size small --seed 0 --out data/synth
  hmu train vq   --data data/synth --out runs/vq --preset tiny --seed 0
  hmu train mask --data data/synth --vq runs/vq --out runs/mask --preset tiny
  hmu train res  --data data/synth --vq runs/vq --out runs/res --preset tiny
  hmu train bamm --data data/synth --vq runs/vq --out runs/bamm --preset tiny
  hmu train length --data data/synth --out runs/length --preset tiny
  hmu train evaluator --data data/synth --out runs/evaluator --preset tiny
  hmu train evaluator --data HumanML3D --out runs/t2m --preset humanml3d --glove glove/
  hmu train mask --data HumanML3D --vq runs/vq --out runs/mask --preset humanml3d \\
      --text-encoder clip:/path/ViT-B-32.pt --device cuda
  hmu train vq --data data/synth --out runs/vq --preset tiny --resume   # after a kill
  torchrun --nproc_per_node 4 -m hmu_core.cli.main train vq --data D --out runs/vq

OUT becomes a model directory in the official layout (opt.txt, model/latest.tar, model/
net_best_*.tar or finest.tar, meta/ for the VQ) plus train_log.csv (losses, validation metrics)
and tb/ with --tensorboard. --resume continues from model/latest.tar and gives the same
weights as an uninterrupted run (exactly, on the CPU).
"""

_KINDS = {
    "vq": "train the RVQ-VAE (motion tokenizer)",
    "mask": "train MoMask's masked transformer (base token layer)",
    "res": "train MoMask's residual transformer (token layers 1..Q-1)",
    "bamm": "train BAMM's bidirectional autoregressive transformer (base token layer)",
    "length": "train the text -> motion-length estimator",
    "evaluator": "train the T2M evaluator (movement autoencoder, then text-motion matching)",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu train`` and its sub-verbs."""
    parser = sub.add_parser(
        "train", help="train the RVQ-VAE, MoMask/BAMM transformers, length estimator or evaluator",
        description="Train hmu's models with the official losses and schedules.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = parser.add_subparsers(dest="train_kind", metavar="MODEL", required=True)
    for kind, help_text in _KINDS.items():
        p = kinds.add_parser(kind, help=help_text, description=help_text + ".",
                             epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        common.add_data(p, "dataset directory in the HumanML3D layout")
        p.add_argument("--out", type=Path, required=True, help="model directory to write")
        p.add_argument("--preset", choices=("tiny", "humanml3d"), default="tiny",
                       help="tiny (CPU, synthetic sets, minutes) or humanml3d (official "
                       "hyperparameters); default: tiny")
        p.add_argument("--seed", type=common.seed, default=0, help="random seed (default: 0)")
        if kind in ("mask", "res", "bamm"):
            p.add_argument("--vq", type=Path, required=True,
                           help="trained RVQ-VAE directory (hmu train vq output)")
        if kind == "evaluator":
            p.add_argument("--glove", type=Path, metavar="DIR",
                           help="official glove/ dir (our_vab_*); default: fit word vectors "
                           "on the train captions and save them in OUT/glove")
        elif kind != "vq":
            p.add_argument("--text-encoder", default="minilm",
                           help="text encoder spec (default: minilm; clip:/path/ViT-B-32.pt "
                           "for official-compatible models)")
        p.add_argument("--resume", action="store_true",
                       help="continue the run in OUT from model/latest.tar")
        p.add_argument("--max-iters", type=int, default=None,
                       help="stop each training stage after this many iterations "
                       "(overrides the preset)")
        p.add_argument("--epochs", type=int, default=None,
                       help="stop each training stage after this many epochs (overrides "
                       "the preset)")
        p.add_argument("--batch-size", type=int, default=None,
                       help="batch size per process of each training stage (overrides "
                       "the preset)")
        common.add_device(p)
        p.add_argument("--no-amp", action="store_true",
                       help="on CUDA, train in fp32 instead of bf16 autocast")
        p.add_argument("--no-compile", action="store_true",
                       help="on CUDA, do not torch.compile the heavy submodules")
        p.add_argument("--tensorboard", action="store_true",
                       help="also log to OUT/tb (needs the tensorboard package)")
        common.add_no_progress(p)
        p.set_defaults(run=run)


def _check(args: argparse.Namespace) -> None:
    for name in ("max_iters", "epochs", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    common.data_dir(args)
    common.check_out_dir(args.out, None)


def run(args: argparse.Namespace) -> int:
    """Train the chosen model and print where it went and what it reached."""
    _check(args)
    from hmu_core.train.loop import RunOptions
    from hmu_core.train.presets import get_preset, with_overrides
    from hmu_core.train.runtime import init_runtime, shutdown_runtime

    if args.train_kind == "evaluator":
        from hmu_core.train.evaluator import evaluator_preset

        base = evaluator_preset(args.preset)
    else:
        base = get_preset(args.train_kind, args.preset)
    preset = with_overrides(base, max_iters=args.max_iters, epochs=args.epochs,
                            batch_size=args.batch_size)
    cuda_flag = None if args.device != "cpu" else False
    runtime = init_runtime(args.device, amp=False if args.no_amp else cuda_flag,
                           compile_model=False if args.no_compile else cuda_flag)
    options = RunOptions(out_dir=args.out, seed=args.seed, resume=args.resume,
                         tensorboard=args.tensorboard,
                         progress=not args.no_progress and runtime.is_main)
    try:
        result = _train(args, preset, options, runtime)
    finally:
        shutdown_runtime(runtime)
    if runtime.is_main:
        best = ", ".join(f"{k} {v:.4g}" for k, v in result.best.items()) or "no validation"
        print(f"trained {args.train_kind} ({args.preset}) for {result.total_it} iterations "
              f"({result.epoch} epochs) in {result.seconds:.0f} s -> {result.out_dir} "
              f"[best: {best}]")
    return 0


def _train(args: argparse.Namespace, preset, options, runtime):
    """Dispatch to the library trainer of ``args.train_kind``."""
    if args.train_kind == "vq":
        from hmu_core.train.vq import train_vq

        return train_vq(args.data, preset, options, preset_name=args.preset, runtime=runtime)
    if args.train_kind == "evaluator":
        from hmu_core.train.evaluator import train_evaluator

        return train_evaluator(args.data, preset, options, glove_dir=args.glove,
                               preset_name=args.preset, runtime=runtime)
    from hmu_core.text.registry import load_text_encoder

    encoder = load_text_encoder(args.text_encoder)
    if args.train_kind == "length":
        from hmu_core.train.length import train_length

        return train_length(args.data, encoder, preset, options, preset_name=args.preset,
                            runtime=runtime)
    from hmu_core.train.transformers import train_transformer

    return train_transformer(args.train_kind, args.data, args.vq, encoder, preset, options,
                             preset_name=args.preset, runtime=runtime)
