"""Make hmu's embedded default model (``hmu_core/assets/default_model``) from a trained tiny set.

The default model is the synthetic benchmark's tiny MoMask (VQ, masked transformer, residual
transformer, length estimator; offline MiniLM text encoder) plus the ground-truth motion
classifier of the synthetic families. It is what `hmu demo` and the causal LCR regression test
run on, so they need no training and no download.

Reproduce it bit for bit (same torch build, CPU, OMP_NUM_THREADS=2; about 40 min):

    bash scripts/train_tiny_models.sh runs/tiny_models runs/synth_small   # seed 0 everywhere
    .venv/bin/python scripts/make_default_model.py runs/tiny_models

This script keeps only what inference loads, the weights and the epoch counters: optimiser
and scheduler states, RNG snapshots and training logs are dropped (the transformer's
``latest.tar`` shrinks from 8.5 MB to 4.6 MB). opt.txt files and the VQ's ``meta/`` statistics
are copied unchanged, so the result loads with the ordinary checkpoint code.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from hmu_core.atomic import atomic_directory, write_json
from hmu_core.models.checkpoints import STATE_KEYS, find_checkpoint, read_checkpoint
from hmu_core.models.checkpoints import write_checkpoint as save

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "hmu_core" / "assets" / "default_model"
PARTS = {"vq": "rvqvae", "trans": "mask_transformer", "res": "res_transformer",
         "length_estimator": "length_estimator"}
KEEP = ("ep", "epoch", "total_it", "niter", "hmu_selected_on")


def strip_part(source: Path, target: Path, kind: str) -> str:
    """Copy opt.txt and meta/, and the loaded checkpoint with only weights and counters."""
    target.mkdir(parents=True)
    shutil.copyfile(source / "opt.txt", target / "opt.txt")
    if (source / "meta").is_dir():
        shutil.copytree(source / "meta", target / "meta")
    ckpt_path = find_checkpoint(source, kind)
    ckpt = read_checkpoint(ckpt_path)
    key = next(k for k in STATE_KEYS[kind] if k in ckpt)
    save(target / "model" / ckpt_path.name,
         {key: ckpt[key], **{k: ckpt[k] for k in KEEP if k in ckpt}})
    return ckpt_path.name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path,
                        help="a trained tiny set (scripts/train_tiny_models.sh)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    missing = [p for p in (*PARTS, "classifier.npz", "classifier.json")
               if not (args.source / p).exists()]
    if missing:
        print(f"make_default_model: {args.source} lacks {', '.join(missing)}; run "
              f"scripts/train_tiny_models.sh first", file=sys.stderr)
        return 2
    with atomic_directory(args.out, overwrite=True) as tmp:
        files = {part: strip_part(args.source / part, tmp / part, kind)
                 for part, kind in PARTS.items()}
        for name in ("classifier.npz", "classifier.json"):
            shutil.copyfile(args.source / name, tmp / name)
        record = json.loads((args.source / "hmu.json").read_text())
        write_json(tmp / "hmu.json", {k: v for k, v in record.items() if k != "bamm"})
        evaluation = json.loads((args.source / "eval_momask.json").read_text())
        write_json(tmp / "provenance.json", {
            "what": "tiny MoMask trained on the synthetic 'small' set, seed 0",
            "reproduce": ["bash scripts/train_tiny_models.sh runs/tiny_models runs/synth_small",
                          ".venv/bin/python scripts/make_default_model.py runs/tiny_models"],
            "checkpoints": files, "family_match_test": evaluation.get("family_match"),
            "classifier": "MotionClassifier over the 19 synthetic families (train split)"})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
