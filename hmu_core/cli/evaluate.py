"""``hmu eval``: the official T2M protocol plus the unlearning measures on one test subset.

Arguments become an ``EvalRequest``; ``hmu_core.eval.report.evaluate`` does the work and
``write_report`` writes ``OUT/eval.json`` and ``OUT/eval.md``. torch is imported inside ``run``
only, so ``hmu --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hmu_core.cli import common
from hmu_core.errors import ConfigError

_EPILOG = """examples:
  hmu train evaluator --data data/synth --out runs/evaluator --preset tiny
  hmu eval --model runs/set --data data/synth --split forget --concept violence \\
      --evaluator runs/evaluator --repeats 5 --out runs/eval/forget
  hmu eval --model runs/set --data data/synth --split retain --evaluator runs/evaluator \\
      --mm-captions 32 --mm-generations 10 --mm-times 5 --out runs/eval/retain
  hmu eval --model checkpoints/t2m/set --data HumanML3D --split forget \\
      --evaluator checkpoints/t2m --glove glove --text-encoder clip:/path/ViT-B-32.pt \\
      --out runs/eval/official

--split picks the forget (toxic) or retain clips of the dataset's test split for the concepts
(--mode official: case-sensitive substrings, as HMU). Per repeat every item draws a caption and
the official crop, generates with the ground-truth length, and gets FID, Diversity, R@1/2/3,
MM-Dist, MM-Notox (HMU's MM-Safe) and MultiModality; eval.md reports mean ± 95 % CI over the
repeats beside the ground-truth row. Measures (skip with --no-measures): toxicity rate of the
generated motions (a classifier of train forget vs retain motions; on synthetic sets also the
true action families), NCS@k, the implicit-prompt attack rate (forget split; the dataset's
implicit_captions.json or --implicit FILE) and, on synthetic retain splits, the action accuracy.
The evaluator is an 'hmu train evaluator' output (word vectors in its glove/) or the official
checkpoints/t2m with --glove.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu eval``."""
    p = sub.add_parser(
        "eval", help="evaluate a model set on the forget or retain test clips of a concept",
        description="Run the official T2M evaluation protocol (FID, Diversity, R-precision, "
        "MM-Dist, MM-Notox, MultiModality, mean ± 95 % CI) and the unlearning measures.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, metavar="DIR", help="model set directory")
    for part in ("vq", "trans", "res"):
        p.add_argument(f"--{part}", type=Path, metavar="DIR",
                       help=f"{part} model directory (overrides --model's)")
    common.add_data(p, "dataset (HumanML3D layout)")
    p.add_argument("--split", choices=("forget", "retain"), required=True,
                   help="which test clips: those matching the concepts, or the others")
    common.add_concept(p, "concept name(s) or concept files (repeatable; default: violence)")
    p.add_argument("--mode", choices=("official", "word"), default="official",
                   help="keyword matching (default: official)")
    p.add_argument("--evaluator", type=Path, metavar="DIR",
                   help="evaluator directory (default: DATA/evaluator)")
    p.add_argument("--glove", type=Path, metavar="DIR",
                   help="word vectors (default: glove/ beside the evaluator)")
    p.add_argument("--text-encoder", metavar="SPEC", help="text encoder spec of the model set")
    p.add_argument("--repeats", type=int, default=20, help="protocol repeats (default: 20)")
    p.add_argument("--batch-size", type=int, default=32, help="batch = R-precision pool (32)")
    p.add_argument("--mm-captions", type=int, default=96,
                   help="MultiModality captions (default 96 = 3 batches; 0 skips it)")
    p.add_argument("--mm-generations", type=int, default=30,
                   help="generations per MultiModality caption (default: 30)")
    p.add_argument("--mm-times", type=int, default=10, help="MultiModality pairs (default: 10)")
    p.add_argument("--mm-notox", choices=("mean", "official"), default="mean",
                   help="MM-Notox accounting (official: HMU's per-batch sums)")
    p.add_argument("--ncs-k", type=int, nargs="+", default=(1, 5), metavar="K",
                   help="NCS@k values (default: 1 5)")
    p.add_argument("--implicit", type=Path, metavar="FILE",
                   help="implicit prompts: text file (one a line) or JSON family -> prompts")
    p.add_argument("--no-measures", action="store_true",
                   help="only the protocol's metrics (no classifiers, NCS, attacks)")
    p.add_argument("--seed", type=common.seed, default=0, help="random seed (default: 0)")
    common.add_device(p)
    p.add_argument("--out", type=Path, required=True, help="directory for eval.json, eval.md")
    common.add_no_progress(p)
    common.add_sampling(p)
    p.set_defaults(run=run)


def _request(args: argparse.Namespace):
    from hmu_core.eval.protocol import ProtocolParams
    from hmu_core.eval.report import EvalRequest

    if args.model is None and (args.vq is None or args.trans is None):
        raise ConfigError("give --model DIR (a model set) or both --vq and --trans")
    common.data_dir(args)
    common.check_out_dir(args.out, None)
    evaluator = args.evaluator if args.evaluator is not None else args.data / "evaluator"
    params = ProtocolParams(repeats=args.repeats, batch_size=args.batch_size,
                            mm_captions=args.mm_captions, mm_generations=args.mm_generations,
                            mm_times=args.mm_times, seed=args.seed,
                            mm_notox_accounting=args.mm_notox, match_mode=args.mode,
                            sampling=common.sampling_params(args))
    parts = tuple((k, str(getattr(args, k))) for k in ("vq", "trans", "res")
                  if getattr(args, k) is not None)
    return EvalRequest(model_dir=args.model, data_dir=args.data, split=args.split,
                       evaluator_dir=evaluator, concepts=tuple(args.concept),
                       glove_dir=args.glove, parts=parts, text_encoder=args.text_encoder,
                       mode=args.mode, protocol=params, measures=not args.no_measures,
                       ncs_k=tuple(args.ncs_k), implicit=args.implicit,
                       device=common.torch_device(args.device))


def run(args: argparse.Namespace) -> int:
    """Evaluate, write eval.json/eval.md, print the table's headline numbers."""
    request = _request(args)
    from hmu_core.eval.report import EvalResources, evaluate, write_report

    # Resolving the evaluator and word vectors first makes a missing one fail in a second.
    resources = EvalResources(request.data_dir, request.evaluator_dir,
                              glove_dir=request.glove_dir, concepts=request.concepts,
                              mode=request.mode, seed=request.protocol.seed,
                              device=request.device)
    with common.ProgressBars(args.no_progress, "batch") as bars:
        report = evaluate(request, resources, bars)
    json_path, md_path = write_report(args.out, report)
    s = report["summary"]
    print(f"{args.split}: FID {s['fid']['mean']:.3f}, R@1 {s['top1']['mean']:.3f}, MM-Dist "
          f"{s['matching_score']['mean']:.3f}, MM-Notox {s['mm_notox']['mean']:.3f} over "
          f"{args.repeats} repeats -> {md_path}, {json_path.name}")
    return 0
