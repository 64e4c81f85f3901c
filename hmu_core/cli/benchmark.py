"""``hmu benchmark``: the paper's Table 1, the r ablation (Table 3) and single-concept rows
(Table 4) over several model sets; ``hmu_core.eval.benchmark`` does the work.

torch is imported inside ``run`` so ``hmu --help`` stays fast.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from hmu_core.cli import common

_EPILOG = """examples:
  hmu benchmark --data data/synth-small --evaluator runs/evaluator --concept violence_motionx \\
      --models original=runs/set dr=runs/dr ft=runs/ft uce=runs/uce rece=runs/rece lcr=runs/lcr \\
      --r-sweep 4 8 16 32 --singles kick uppercut --out docs/benchmark
  hmu benchmark --data data/HumanML3D --evaluator checkpoints/t2m --glove glove \\
      --models original=ckpt/set lcr=runs/lcr --concept violence --out runs/bench

Every (model, subset) evaluation is kept in OUT/evals/ and reused when nothing changed, so an
interrupted benchmark resumes. Writes OUT/benchmark.md, OUT/benchmark.csv and, with
--r-sweep, OUT/r_ablation.png. --shard I/N (a SLURM array or Kubernetes indexed Job) runs only
rows I, I+N, ... (a row: a model set, an r value, a single concept, with both subsets) and
writes no table; once all N have finished into the same OUT, the same command without --shard
reuses every evaluation and writes the tables. The r-sweep and single-concept LCR sets are
made from the 'original' model into OUT/models/.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu benchmark``."""
    p = sub.add_parser("benchmark", help="the paper's tables over several model sets",
                       description="Evaluate model sets on the forget and retain test subsets "
                       "and write the paper's tables (methods, r ablation, single concepts).",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_data(p, "dataset (HumanML3D layout)")
    p.add_argument("--evaluator", type=Path, required=True, help="evaluator directory")
    p.add_argument("--glove", type=Path, help="word vectors (default: beside the evaluator)")
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=DIR",
                   help="model sets in table order; 'original' is the unedited one")
    p.add_argument("--trans", type=Path, metavar="DIR",
                   help="base transformer for every set (e.g. a BAMM directory)")
    common.add_concept(p, "concept(s) (default: violence)")
    p.add_argument("--r-sweep", nargs="*", type=int, default=(), metavar="R",
                   help="LCR r values for Table 3, e.g. 4 8 16 32")
    p.add_argument("--singles", nargs="*", default=(), metavar="CONCEPT",
                   help="single concepts for Table 4, e.g. kick uppercut")
    p.add_argument("--single-r", type=int, default=16, help="r of the single-concept LCR (16)")
    p.add_argument("--batch-size", type=common.positive_int, default=32, metavar="N",
                   help="batch = R-precision pool of the method and r tables (default: 32, as "
                   "the official protocol; smaller only for small synthetic sets)")
    p.add_argument("--single-batch-size", type=int, metavar="N",
                   help="batch / R-precision pool for single concepts whose test subset has "
                   "fewer than 32 clips (default: the protocol's 32)")
    p.add_argument("--repeats", type=int, default=20, help="protocol repeats (default: 20)")
    p.add_argument("--retain-repeats", type=int,
                   help="repeats on the (larger) retain subset (default: --repeats)")
    p.add_argument("--mm-captions", type=int, default=96,
                   help="MultiModality captions (default 96; 0 skips it)")
    p.add_argument("--mm-generations", type=int, default=30, help="MultiModality generations")
    p.add_argument("--seed", type=common.seed, default=0, help="random seed (default: 0)")
    common.add_device(p)
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--shard", metavar="I/N",
                   help="run only shard I of N of the rows (then run without it for the tables)")
    common.add_no_progress(p)
    common.add_sampling(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Build the plan, run or resume it, print where the tables are."""
    from dataclasses import replace

    from hmu_core.eval.benchmark import BenchmarkPlan, parse_models, run_benchmark
    from hmu_core.eval.protocol import ProtocolParams
    from hmu_core.shard import Shard

    common.data_dir(args)
    common.check_out_dir(args.out, None)
    device = common.torch_device(args.device)
    protocol = ProtocolParams(repeats=args.repeats, seed=args.seed, batch_size=args.batch_size,
                              mm_captions=args.mm_captions, mm_generations=args.mm_generations,
                              mm_times=min(10, max(1, args.mm_generations - 1)),
                              sampling=common.sampling_params(args))
    retain = None if args.retain_repeats is None else replace(protocol,
                                                              repeats=args.retain_repeats)
    plan = BenchmarkPlan(data_dir=args.data, evaluator_dir=args.evaluator, out=args.out,
                         models=parse_models(args.models), concepts=tuple(args.concept),
                         r_sweep=tuple(args.r_sweep), singles=tuple(args.singles),
                         single_r=args.single_r, protocol=protocol, retain_protocol=retain,
                         single_batch_size=args.single_batch_size,
                         trans=args.trans, glove_dir=args.glove, device=device)

    shard = None if args.shard is None else Shard.parse(args.shard)
    command = "hmu " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    with common.ProgressBars(args.no_progress, "batch") as bars:
        path = run_benchmark(plan, step=lambda message: bars.write(f"hmu benchmark: {message}"),
                             progress=bars, command=command, shard=shard)
    if path is not None:
        print(f"hmu benchmark: tables in {path}")
    return 0
