"""Evaluation videos: each prompt by the original and the unlearned bundle, side by side.

    .venv/bin/python scripts/render_eval_videos.py --original ORIG --unlearned UNL \\
        --prompts prompts.txt --out videos/ [--frames 60] [--width 640 --height 360]
    blender -b -P scripts/render_eval_videos.py -- --original ORIG --unlearned UNL \\
        --prompt "a person kicks" --out videos/

Runs under plain Python with the bpy module (``pip install bpy==5.0.1``) and inside Blender
(``blender -b -P``; onnxruntime then comes from the installed hmu extension's wheels, or put
a site-packages holding it on PYTHONPATH). One MP4 per prompt, named like the clip library's
files (``000_a-person-kicks_s0.mp4``), Workbench by default; the prompt and seed are burned
in, the two sides are labelled "original" and "unlearned". Prompt files use the clip
library's syntax (``prompt[ | seconds[ | seed]]`` per line).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # blender -b -P does not put the repository on sys.path
    sys.path.insert(0, str(REPO))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--original", required=True, help="bundle before unlearning (left)")
    parser.add_argument("--unlearned", required=True, help="unlearned bundle (right)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompts", help="prompt file (one 'prompt[ | seconds[ | seed]]' "
                                          "per line)")
    source.add_argument("--prompt", action="append", help="a prompt (repeatable)")
    parser.add_argument("--out", required=True, help="folder for the MP4 files")
    parser.add_argument("--seconds", type=float, default=4.0, help="default clip duration")
    parser.add_argument("--seed", type=int, default=0, help="default seed (clip i: seed + i)")
    parser.add_argument("--frames", type=int, default=None,
                        help="render only the first N frames (default: whole clips)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--engine", default="BLENDER_WORKBENCH",
                        choices=("BLENDER_WORKBENCH", "BLENDER_EEVEE", "CYCLES"))
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--threads", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # inside Blender, the script's own arguments follow "--"
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    args = parse_args(argv)
    from exporter.clips import parse_prompts, read_prompts
    from exporter.runtime import Generator
    from exporter.scene.eval_video import RenderSettings, render_comparison
    from hmu_core.errors import HmuError

    try:
        if args.prompts:
            clips = read_prompts(args.prompts, seconds=args.seconds, seed=args.seed)
        else:
            clips = parse_prompts("\n".join(args.prompt), seconds=args.seconds, seed=args.seed,
                                  source="--prompt")
        generators = [Generator(b, device=args.device, threads=args.threads)
                      for b in (args.original, args.unlearned)]
        settings = RenderSettings(width=args.width, height=args.height, engine=args.engine,
                                  frames=args.frames)
        out_dir = Path(args.out)
        for clip in clips:
            start = time.perf_counter()
            motions = [g.generate([clip.prompt], seconds=clip.seconds,
                                  seeds=[clip.seed]).motions[0] for g in generators]
            path = render_comparison(motions, f"{clip.prompt}  (seed {clip.seed})",
                                     out_dir / f"{clip.stem}.mp4", settings)
            print(f"{path} ({time.perf_counter() - start:.1f} s)")
    except HmuError as exc:
        print(f"render_eval_videos: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    code = main()
    if code:  # inside Blender sys.exit would also end the session on success; only on error
        sys.exit(code)
