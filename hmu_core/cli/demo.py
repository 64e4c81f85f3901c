"""``hmu demo``: the whole product in one command (``hmu_core.demo`` does the work).

torch is imported inside ``run`` so ``hmu --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hmu_core.cli import common

_EPILOG = """examples:
  hmu demo                      # everything under runs/demo (about 5 min the first time)
  hmu demo --out runs/demo-tiny --size tiny --limit 20

Uses the embedded default model (the synthetic benchmark's tiny MoMask), makes the synthetic
'small' set if missing, runs LCR on the violence concept, exports the original and the
unlearned bundle, generates the same prompts from both with the torch-free runtime and writes
OUT/report/README.md with the before/after figures, side-by-side GIFs and Figure 2. A second
run reuses what exists and takes seconds.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu demo``."""
    p = sub.add_parser("demo", help="unlearn violence from the embedded model and show it",
                       description="Run hmu end to end on the embedded default model and the "
                       "synthetic benchmark, and write a before/after report.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/demo"),
                   help="output directory (default: runs/demo)")
    p.add_argument("--size", choices=("tiny", "small", "full"), default="small",
                   help="synthetic dataset size (default: small, the default model's own)")
    p.add_argument("--r", type=common.positive_int, default=16,
                   help="LCR codes to remove (default: 16)")
    p.add_argument("--limit", type=common.positive_int, default=60,
                   help="test captions per set (forget, retain) to judge (default: 60)")
    p.add_argument("--repeats", type=common.positive_int, default=20,
                   help="LCR: random crops per caption entry when counting codes (default: 20)")
    p.add_argument("--per-kind", type=common.positive_int, default=3,
                   help="explicit, implicit and safe prompts to render (default: 3 each)")
    common.add_no_progress(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where the report is."""
    from hmu_core.cli.unlearn import progress_bar
    from hmu_core.demo import run_demo

    common.check_out_dir(args.out, None)

    def step(message: str) -> None:
        print(f"hmu demo: {message}", flush=True)

    result = run_demo(args.out, size=args.size, r=args.r, limit=args.limit,
                      repeats=args.repeats, per_kind=args.per_kind,
                      progress=progress_bar(args.no_progress), step=step)
    figures = result.figures
    for name in ("original", "unlearned"):
        f = figures[name]
        print(f"  {name:9s}: forget toxicity {f['forget_toxicity']:.0%}, implicit attacks "
              f"{f['implicit_attack']:.0%}, retain action accuracy "
              f"{f['retain_action_accuracy']:.0%}")
    print(f"hmu demo: report in {result.report} (open it in a Markdown viewer); bundles in "
          f"{result.out / 'bundles'}")
    return 0
