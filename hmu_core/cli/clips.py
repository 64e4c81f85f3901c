"""``hmu clips``: a prompt file -> a clip library (BVH, AMASS-style npz, FBX, GLB + index.json).

Arguments become a ``ClipsParams``; ``exporter.clips.make_clips`` does the work. Torch-free:
the library runs on a bundle with onnxruntime (and bpy for FBX/GLB), and everything is
imported inside ``run``, so ``hmu clips --help`` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from hmu_core.cli import common

_EPILOG = """examples:
  hmu clips examples/prompts.txt --bundle runs/bundles/lcr --out runs/library
  hmu clips examples/prompts.txt --bundle runs/bundles/lcr --out runs/library \\
      --formats bvh,npz --seconds 6
  hmu clips examples/prompts.txt --bundle runs/bundles/lcr --out runs/library --device cuda
  hmu clips examples/prompts.txt --bundle runs/bundles/lcr --out runs/library \\
      --shard $SLURM_ARRAY_TASK_ID/8
  hmu clips examples/prompts.txt --bundle runs/bundles/lcr --out runs/library --merge

PROMPTS is a UTF-8 text file, one clip per line: 'prompt text[ | seconds[ | seed]]'.
Lines starting with '#' and blank lines are skipped. An empty or missing seconds field uses
--seconds; an empty or missing seed uses --seed + i for the i-th clip (0-based):

  # warm-ups
  a person waves with the right hand
  a person jumps twice | 3
  a person walks in a circle | 6.5 | 42
  a person bows || 7

Each clip gets OUT/{i:03d}_{slug}_s{seed}.{format} and an entry in OUT/index.json (prompt,
seed, seconds, frames, fps, files, bundle sha256, unlearning record). Every file is written
atomically and the index after each clip; running the same command again skips finished clips
and remakes only those whose line, seed, bundle or files changed; Ctrl-C finishes the clip
in progress, then stops (exit code 130; run the command again to resume). fbx and glb need
Blender's Python module (bpy); bvh and npz do not.

Many machines: --shard I/N (0 <= I < N, e.g. a SLURM array or Kubernetes indexed Job index)
makes only clips i with i mod N == I and indexes them in OUT/index.shard-I-of-N.json; the
files are those of one run. When all N jobs have finished (into one shared OUT, or copied
into one), the same command with --merge checks every clip and writes OUT/index.json exactly
as one run would (the shard indexes are removed).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu clips``."""
    p = sub.add_parser(
        "clips", help="generate a clip library (BVH/npz/FBX/GLB + index.json) from a prompt file",
        description="Generate one motion clip per line of a prompt file with an exported "
        "bundle, and write it in each requested format plus an index; resumable.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompts", type=Path, metavar="PROMPTS", help="prompt file (syntax below)")
    p.add_argument("--bundle", type=Path, required=True, metavar="DIR",
                   help="bundle directory made by 'hmu export'")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output directory (created if missing)")
    p.add_argument("--formats", default="bvh,npz,fbx,glb",
                   help="comma-separated subset of bvh,npz,fbx,glb (default: all four)")
    common.add_device(p, "onnxruntime")
    p.add_argument("--seconds", type=common.duration, default=4.0,
                   help="duration of lines without one (default: 4)")
    p.add_argument("--seed", type=common.seed, default=0,
                   help="line i without a seed uses SEED + i (default: 0)")
    split = p.add_mutually_exclusive_group()
    split.add_argument("--shard", metavar="I/N",
                       help="make only shard I of N (clips i with i mod N == I)")
    split.add_argument("--merge", action="store_true",
                       help="merge the finished shards' indexes into OUT/index.json")
    p.add_argument("--trusted-keys", action="append", default=[], metavar="FILE",
                   help="public-key file (hmu keygen's KEY.pub); the bundle must be signed by "
                   "one of its keys (repeatable; adds to $HMU_TRUSTED_KEYS)")
    p.add_argument("--no-foot-cleanup", dest="foot_cleanup", action="store_false",
                   help="keep the model's feet as generated (default: plant them: no sliding "
                        "in contact, nothing below the floor)")
    common.add_no_progress(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Make the library with a progress bar; print a one-line summary."""
    from exporter.clips import ClipsParams, make_clips, merge_shards, parse_formats, read_prompts
    from hmu_core.shard import Shard

    params = ClipsParams(formats=parse_formats(args.formats),
                         device=common.onnxruntime_device(args.device),
                         seconds=args.seconds, seed=args.seed,
                         trusted_keys=tuple(str(k) for k in args.trusted_keys),
                         foot_cleanup=args.foot_cleanup)
    shard = None if args.shard is None else Shard.parse(args.shard)
    specs = read_prompts(args.prompts, seconds=params.seconds, seed=params.seed)
    if args.merge:
        index = merge_shards(specs, args.bundle, args.out, params, source=str(args.prompts))
        print(f"{args.out}: {len(specs)} clip(s) merged; index {index}")
        return 0
    for spec in specs:
        common.check_duration(spec.seconds, f"{args.prompts}:{spec.line}: seconds")
    common.check_out_dir(args.out, None)
    # Shards share one output directory: a failing shard must not remove the others' clips.
    cleanup = common.removed_on_failure(args.out) if shard is None else contextlib.nullcontext()
    with cleanup, common.deferred_interrupt() as interrupted, \
            common.ProgressBars(args.no_progress, "clip", leave=True) as bars:
        report = make_clips(specs, args.bundle, args.out, params, source=str(args.prompts),
                            progress=bars, should_stop=interrupted, shard=shard)
    done = f"{len(report.generated)} clip(s) generated, {len(report.skipped)} skipped"
    if report.stopped:
        print(f"hmu: interrupted: {args.out}: {done}; run the same command again to resume",
              file=sys.stderr)
        return 130
    print(f"{args.out}: {done} ({report.seconds:.1f} s); index {report.index_path}")
    return 0
