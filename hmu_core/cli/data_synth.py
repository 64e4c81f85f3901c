"""``hmu data synth``: write the procedural synthetic benchmark in the HumanML3D layout.

The library does the work (:func:`hmu_core.synth.generate.write_synthetic_dataset`); this module
maps arguments, shows a tqdm progress bar and prints a one-line summary. Torch is never imported.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hmu_core.cli import common
from hmu_core.errors import ConfigError

_EPILOG = """examples:
  hmu data synth --size tiny --seed 0 --out runs/data/synth-tiny
  hmu data synth --size small --seed 1 --out runs/data/synth --toxic-share 0.08
  hmu data synth --size full --seed 0 --out runs/data/synth-full --overwrite --workers 8

writes OUT/new_joint_vecs/*.npy (T-1, 263), OUT/new_joints/*.npy (T-1, 22, 3), OUT/texts/*.txt,
Mean.npy, Std.npy, train/val/test/train_val/all.txt, synth_meta.json, clips.jsonl (labels and
per-segment frame spans) and implicit_captions.json (held-apart attack prompts). The same seed
writes byte-identical files, whatever --workers. Sizes: tiny about 200 clips (seconds), small
about 3,000 (about a minute on 2 cores), full about 20,000 (a few minutes).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu data synth``."""
    parser = sub.add_parser(
        "synth",
        help="generate the synthetic benchmark (motions, captions, labels)",
        description="Generate hmu's procedural synthetic benchmark in the HumanML3D layout: "
        "19 action families (7 toxic), FK motions on the HumanML3D skeleton, three captions "
        "per clip, ground-truth labels per clip and per frame span.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", choices=("tiny", "small", "full"), default="tiny",
                        help="tiny (~200 clips), small (~3,000) or full (~20,000); "
                        "default: tiny")
    parser.add_argument("--seed", type=common.seed, default=0,
                        help="random seed, 0..2**32-1 (default: 0)")
    parser.add_argument("--out", type=Path, required=True, help="directory to create")
    parser.add_argument("--toxic-share", type=float, default=0.08,
                        help="share of clips with a toxic action (default: 0.08, as HumanML3D)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT if hmu wrote it (never anything else)")
    parser.add_argument("--workers", type=common.positive_int,
                        default=min(2, os.cpu_count() or 1),
                        help="processes generating clips in parallel; the files do not depend "
                        "on it (default: 2, or 1 on a single core)")
    common.add_no_progress(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Generate the dataset and print a one-line summary."""
    from hmu_core.synth.generate import write_synthetic_dataset

    if not 0.0 <= args.toxic_share <= 1.0:
        raise ConfigError(f"--toxic-share {args.toxic_share} is outside [0, 1]")
    common.check_out_dir(args.out, args.overwrite)
    with common.ProgressBars(args.no_progress, "clip") as bars:
        summary = write_synthetic_dataset(args.out, args.size, args.seed, args.toxic_share,
                                          overwrite=args.overwrite, progress=bars,
                                          workers=args.workers)
    print(f"wrote {summary.clips} clips ({summary.toxic_clips} toxic, "
          f"{summary.feature_frames} frames, {summary.feature_frames / 20 / 3600:.2f} h) to "
          f"{summary.out_dir} in {summary.seconds:.1f} s")
    return 0
