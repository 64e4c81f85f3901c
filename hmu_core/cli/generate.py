"""``hmu generate``: text -> motion clips (.bvh, .npz, .gif or .mp4) from a MoMask/BAMM model set.

Arguments become a ``SamplingParams`` and a ``ModelSet`` (``hmu_core.models.model_set``);
``hmu_core.models.generate`` does the work (the request loop of ``hmu_core.sampling``); the
writers come from ``hmu_core.motion`` and
``hmu_core.render``. torch is imported inside ``run`` only, so ``hmu --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hmu_core.cli import common
from hmu_core.errors import ConfigError
from hmu_core.sampling.lengths import HUMANML3D, tokens_from_seconds

SUFFIXES = (".bvh", ".npz", ".gif", ".mp4")

_EPILOG = """examples:
  hmu generate "a person jumps twice" --model runs/set --seconds 4 --seed 0 --out runs/clip.bvh
  hmu generate "a person waves" "a person sits down" --model runs/set --out runs/look.gif
  hmu generate "walks in a circle" --vq runs/vq --trans runs/mask --res runs/res \\
      --length-estimator runs/length --out runs/clip.npz
  hmu generate "a man kicks" --model checkpoints/t2m/set \\
      --text-encoder clip:/path/ViT-B-32.pt --gumbel --timesteps 18 --out runs/clip.mp4

--model DIR is a model set: DIR/vq/, DIR/trans/ (MoMask) or DIR/bamm/ (BAMM), optionally
DIR/res/ and DIR/length_estimator/, each in the official layout; DIR/hmu.json, if present,
names them instead ({"format": "hmu-model-set", "version": 1, "vq": ..., "trans": ...,
"res": ..., "length_estimator": ..., "text_encoder": "minilm"}). --vq/--trans/--res/
--length-estimator override single parts (or replace --model).

Outputs by suffix: .bvh (SMPL-named skeleton, Y-up), .npz (AMASS-style poses/trans plus
joints and features), .gif/.mp4 (stick figures; several prompts side by side). With several
prompts, .bvh/.npz files get _00, _01, ... before the suffix. Without --seconds the length is
sampled from the length estimator (MoMask) or predicted by BAMM's END token. Prompt i uses
seed SEED+i and gives the same motion as when generated alone with that seed.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu generate``."""
    p = sub.add_parser(
        "generate", help="generate motion clips from text with a MoMask or BAMM model set",
        description="Generate motions from text prompts (seeded, official sampling defaults) "
        "and write BVH, AMASS-style npz, or a stick-figure GIF/MP4.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompts", nargs="+", metavar="PROMPT", help="text prompt(s)")
    p.add_argument("--out", type=Path, required=True,
                   help="output file: .bvh, .npz, .gif or .mp4")
    p.add_argument("--model", type=Path, metavar="DIR", help="model set directory (see below)")
    for part in ("vq", "trans", "res"):
        p.add_argument(f"--{part}", type=Path, metavar="DIR",
                       help=f"{part} model directory (overrides --model's)")
    p.add_argument("--length-estimator", type=Path, metavar="DIR",
                   help="length estimator directory (overrides --model's)")
    p.add_argument("--text-encoder", metavar="SPEC",
                   help="text encoder spec, e.g. minilm or clip:/path/ViT-B-32.pt "
                   "(default: the model set's, else minilm)")
    p.add_argument("--seconds", type=common.duration,
                   help=f"duration, {HUMANML3D.describe()}; default: estimated")
    p.add_argument("--seed", type=common.seed, default=0, help="random seed (default: 0)")
    common.add_device(p)
    common.add_no_progress(p)
    common.add_sampling(p)
    p.set_defaults(run=run)


def output_paths(out: Path, count: int) -> list[Path]:
    """Where each motion goes: one file for one prompt or an animation, else numbered files."""
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"--out {out}: the suffix must be one of {', '.join(SUFFIXES)}")
    if count == 1 or suffix in (".gif", ".mp4"):
        return [out]
    return [out.with_name(f"{out.stem}_{i:02d}{out.suffix}") for i in range(count)]


def run(args: argparse.Namespace) -> int:
    """Load the model set, generate, write the files, print one line per file."""
    from hmu_core.models.generate import generate_motions, load_generator
    from hmu_core.models.model_set import resolve_model_set
    from hmu_core.motion.amass import write_amass_npz
    from hmu_core.motion.bvh import write_bvh
    from hmu_core.progress import track
    from hmu_core.render.stick import render_stick

    paths = output_paths(args.out, len(args.prompts))
    for path in paths:
        common.check_out_file(path)
    params = common.sampling_params(args)
    if args.seed + len(args.prompts) - 1 > common.MAX_SEED:
        raise ConfigError(f"--seed {args.seed}: prompt i uses SEED + i, which passes "
                          f"{common.MAX_SEED}; choose a smaller seed")
    if args.seconds is not None:
        tokens_from_seconds(args.seconds)  # out of the model's range: fail before loading
    if args.model is None and (args.vq is None or args.trans is None):
        raise ConfigError("give --model DIR, or both --vq and --trans")
    device = common.torch_device(args.device)
    models = resolve_model_set(args.model, text_encoder=args.text_encoder, vq=args.vq,
                               trans=args.trans, res=args.res,
                               length_estimator=args.length_estimator)
    generator = load_generator(models, device=device)
    motions = []
    suffix = args.out.suffix.lower()
    with common.ProgressBars(args.no_progress) as bars:
        for i, prompt in enumerate(track(args.prompts, bars, "generating")):
            motions += generate_motions(generator, prompt, seconds=args.seconds,
                                        seed=args.seed + i, params=params).motions
        if suffix in (".gif", ".mp4"):
            render_stick(motions, paths[0], titles=args.prompts, progress=bars)
        else:
            writer = write_bvh if suffix == ".bvh" else write_amass_npz
            for path, motion in zip(paths, motions, strict=True):
                writer(path, motion)
    for i, motion in enumerate(motions):
        where = paths[0] if len(paths) == 1 else paths[i]
        print(f"{where}: {motion.text!r}, {motion.num_frames} frames "
              f"({motion.duration_seconds:.1f} s), seed {motion.provenance['seed']}, "
              f"{generator.kind}")
    return 0
