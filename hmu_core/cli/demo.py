"""``hmu demo``: the whole product in one command (``exporter.demo`` does the work).

torch is imported inside ``run`` so ``hmu --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hmu_core.cli import common

_EPILOG = """examples:
  hmu demo                      # everything under runs/demo (about 5 min the first time)
  hmu demo --out runs/demo-tiny --size tiny --limit 20
  hmu demo --suppress-r 16 --suppress-greedy 2   # the benchmark's best suppression (+~10 min)

Uses the embedded default model (the synthetic benchmark's tiny MoMask), makes the synthetic
'small' set if missing, unlearns the violence concept twice (LCR, the paper's method, and code
suppression, hmu's), exports the three models, generates the same prompts from each with the
torch-free runtime over several seeds and writes OUT/report/README.md with the figures (mean
± 95 % CI), side-by-side GIFs (original | LCR | suppression) and Figure 2. A second run reuses
what exists and takes seconds.
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
    p.add_argument("--suppress-r", default="32", metavar="R|Q:R,...",
                   help="suppression codes per layer, as `hmu unlearn suppress --r` "
                   "(default: 32)")
    p.add_argument("--suppress-greedy", type=int, default=0, metavar="N",
                   help="then add up to N base-layer codes one at a time on the val split, as "
                   "`hmu unlearn suppress --greedy` (default: 0)")
    p.add_argument("--limit", type=common.positive_int, default=60,
                   help="retain test clips to judge; every forget caption line is judged "
                   "(default: 60)")
    p.add_argument("--implicit-per-family", type=common.positive_int, metavar="N",
                   help="implicit prompts to judge per toxic family (default: all)")
    p.add_argument("--seeds", type=int, default=3,
                   help="seeds per prompt, for mean ± 95 %% CI (default: 3)")
    p.add_argument("--repeats", type=common.positive_int, default=20,
                   help="LCR: random crops per caption entry when counting codes (default: 20)")
    p.add_argument("--per-kind", type=common.positive_int, default=3,
                   help="explicit, implicit and safe prompts to render (default: 3 each)")
    common.add_no_progress(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where the report is."""
    from exporter.demo import run_demo

    common.check_out_dir(args.out, None)

    def step(message: str) -> None:
        print(f"hmu demo: {message}", flush=True)

    with common.ProgressBars(args.no_progress) as progress:
        result = run_demo(args.out, size=args.size, r=args.r, suppress_r=args.suppress_r,
                          suppress_greedy=args.suppress_greedy,
                          limit=args.limit, repeats=args.repeats, seeds=args.seeds,
                          per_kind=args.per_kind,
                          implicit_per_family=args.implicit_per_family, progress=progress,
                          step=step)
    figures = result.figures
    for name in ("original", "lcr", "suppression"):
        f = {k: v["mean"] for k, v in figures[name].items()}
        print(f"  {name:11s}: forget toxicity {f['forget_toxicity']:.0%}, implicit attacks "
              f"{f['implicit_toxicity']:.0%}, retain action accuracy "
              f"{f['retain_accuracy']:.0%}, forget outputs leaving 2 m "
              f"{f['forget_leaves_2m']:.0%}")
    print(f"hmu demo: report in {result.report} (open it in a Markdown viewer); bundles in "
          f"{result.out / 'bundles'}")
    return 0
