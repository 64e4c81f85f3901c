"""``hmu models default``: write a copy of the embedded default model set where you want it.

The embedded set (``hmu_core/assets/default_model``: the synthetic benchmark's tiny MoMask with
the MiniLM text encoder, its length estimator and the families' classifier) is what ``hmu demo``
unlearns; a copy is a model set every other verb takes with ``--model DIR``. Torch-free.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from hmu_core.cli import common

_EPILOG = """examples:
  hmu models default --out runs/set
  hmu unlearn lcr --model runs/set --data runs/data/synth-small --concept violence_motionx \\
      --out runs/lcr

writes OUT/hmu.json, OUT/vq/, OUT/trans/, OUT/res/, OUT/length_estimator/ (official layout),
OUT/classifier.npz + classifier.json (the synthetic families' motion classifier) and
OUT/provenance.json (how the set was trained), atomically.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu models`` and ``hmu models default``."""
    parser = sub.add_parser("models", help="model sets shipped with hmu",
                            description="Model sets shipped with hmu.")
    verbs = parser.add_subparsers(dest="models_verb", metavar="MODELS_VERB", required=True)
    p = verbs.add_parser(
        "default", help="write a copy of the embedded default model set",
        description="Copy the embedded default model set (the synthetic benchmark's tiny "
        "MoMask) to a directory, to use with --model.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="model set directory to create")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT if hmu wrote it (never anything else)")
    p.set_defaults(run=run_default)


def run_default(args: argparse.Namespace) -> int:
    """Copy the embedded set into ``--out`` atomically."""
    from hmu_core.assets import default_model_dir
    from hmu_core.atomic import atomic_directory

    common.check_out_dir(args.out, args.overwrite)
    source = default_model_dir()
    with atomic_directory(args.out, overwrite=args.overwrite) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "cache"))
    print(f"{args.out}: the default model set (tiny MoMask, MiniLM text encoder) from {source}")
    return 0
