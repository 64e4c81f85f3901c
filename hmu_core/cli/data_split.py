"""``hmu data split|stats|import-captions``: concept splits, Figure 2 statistics, captions import.

All three work on a captions-only directory (``texts/`` and split files, no motions): they say
so and carry on. The library does the work (``hmu_core.data.splits``, ``.stats``,
``.captions_import``); these functions map arguments and print a summary. Torch is never
imported here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hmu_core.cli import common

_CONCEPT_HELP = (
    "built-in concept names and/or TOML/JSON concept files (default: violence; 'hmu concepts'"
    " lists the built-ins with their keywords)"
)
_MODE_HELP = (
    "official: case-sensitive substring over whole caption lines, as the official HMU scripts"
    " ('hit' matches 'white'); word: case-insensitive whole words with inflections"
    " (kick/kicks/kicking/kicked). Default: official"
)

_SPLIT_EPILOG = """examples:
  hmu data split --data data/HumanML3D --concept violence --splits train_val test
  hmu data split --data data/HumanML3D --concept kick punch_jab_box_hit_beat --union-name violence
  hmu data split --data data/motionx --concept violence_motionx --mode word --out splits/
  hmu data split --data data/HumanML3D --concept my_concepts.toml --min-occurrences 2

writes OUT/<split>-w-<concept>.txt (forget) and OUT/<split>-wo-<concept>.txt (retain), the
official kw_splits names, plus OUT/split_summary.json. OUT defaults to DATA/kw_splits.
The older positional form (hmu data split DATA ...) still works; --concepts = --concept.
"""

_STATS_EPILOG = """examples:
  hmu data stats --data data/HumanML3D --split all --out stats/official
  hmu data stats --data data/HumanML3D --mode word --compare-modes --out stats/word
  hmu data stats --data data/synth --concept violence kick punch --out stats/synth

writes OUT/stats.json (per concept and per keyword: matching ids, ids considered, share; over
all ids and over originals only) and, per concept, OUT/<concept>_pie.png and
OUT/<concept>_keywords.png (the paper's Figure 2).
"""

_IMPORT_EPILOG = """examples:
  hmu data import-captions ../shared/data/humanml3d_texts.jsonl.gz --out data/h3d_captions
  hmu data import-captions corpus.jsonl.gz --checksums corpus.json --splits-from splits/ \\
      --out data/captions --overwrite

verifies the sha256 against the JSON beside the corpus (name.jsonl.gz -> name.json), then
writes OUT/texts/<id>.txt and the split files found beside the corpus, atomically.
"""


def _add_common_args(parser: argparse.ArgumentParser) -> None:
    common.add_data(parser, "HumanML3D-layout directory", positional=True)
    common.add_concept(parser, _CONCEPT_HELP)
    parser.add_argument("--mode", choices=["official", "word"], default="official",
                        help=_MODE_HELP)
    parser.add_argument("--min-occurrences", type=int, default=None, metavar="N",
                        help="caption lines that must match for an id to be toxic (overrides"
                        " each concept's own value; official default 1)")
    common.add_no_progress(parser)


def _captions_only_note(dataset) -> None:
    if not dataset.has_motions:
        print(f"note: {dataset.root} has no motions (no new_joint_vecs/*.npy); working from"
              " captions only")


def run_split(args: argparse.Namespace) -> int:
    """``hmu data split``: write forget/retain id files."""
    from hmu_core.data.concepts import resolve_concepts
    from hmu_core.data.humanml3d import HumanML3D
    from hmu_core.data.splits import write_concept_splits

    data = common.data_dir(args)
    out = Path(args.out) if args.out else data / "kw_splits"
    common.check_out_dir(out, None)
    concepts = resolve_concepts(args.concept)
    dataset = HumanML3D(data)
    _captions_only_note(dataset)
    with common.removed_on_failure(out), common.ProgressBars(args.no_progress, "id") as bars:
        results = write_concept_splits(
            dataset, args.splits, concepts, args.mode, out, args.min_occurrences,
            union_name=args.union_name, progress=bars)
    for result in results:
        for name, n_forget in result.forget.items():
            total = n_forget + result.retain[name]
            share = 100 * n_forget / total if total else 0.0
            print(f"{result.split}: {name}: forget {n_forget:,} / retain {result.retain[name]:,}"
                  f" ({share:.2f}% toxic, {args.mode} mode)")
        if result.missing_captions:
            print(f"{result.split}: {len(result.missing_captions)} ids without captions left out")
    print(f"wrote split files and split_summary.json to {out}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """``hmu data stats``: Figure 2 counts (JSON) and charts (PNG)."""
    from hmu_core.data.concepts import resolve_concepts
    from hmu_core.data.humanml3d import HumanML3D
    from hmu_core.data.stats import dataset_stats, write_stats

    data = common.data_dir(args)
    common.check_out_dir(args.out, None)
    concepts = resolve_concepts(args.concept)
    dataset = HumanML3D(data)
    _captions_only_note(dataset)
    with common.ProgressBars(args.no_progress, "id") as bars:
        stats = dataset_stats(dataset, args.split, concepts, args.mode, args.min_occurrences,
                              compare_modes=args.compare_modes, progress=bars)
    title = args.title or f"{dataset.root.name} {args.split} ({args.mode} mode)"
    with common.removed_on_failure(args.out):
        written = write_stats(args.out, stats, figures=not args.no_figures, title=title)
    for subset in ("all", "originals"):
        block = stats[subset]
        considered = block["toxic_any"]["considered"]
        if subset == "originals" and considered == stats["all"]["toxic_any"]["considered"]:
            continue
        print(f"{subset} ({considered:,} ids):")
        for name, concept in block["concepts"].items():
            ids = concept["ids"]
            keywords = ", ".join(
                f"{k} {v['matching']:,} ({100 * v['share']:.2f}%)"
                for k, v in concept["keywords"].items()
            )
            print(f"  {name}: {ids['matching']:,} ids ({100 * ids['share']:.2f}%); {keywords}")
    print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """``hmu data import-captions``: captions-only dataset from a .jsonl.gz corpus."""
    from hmu_core.data.captions_import import import_captions

    common.check_out_dir(args.out, args.overwrite)
    result = import_captions(
        args.corpus, args.out, checksums=args.checksums, splits_dir=args.splits_from,
        verify=not args.no_verify, overwrite=args.overwrite,
    )
    splits = ", ".join(f"{k} {v:,}" for k, v in result.splits.items())
    checked = "NOT verified" if args.no_verify else "verified"
    print(f"wrote {result.n_ids:,} caption files ({result.n_lines:,} lines) to {result.out_dir}"
          f" (sha256 {result.sha256_gz[:12]}… {checked}); splits: {splits};"
          " captions only, no motions")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``split``, ``stats`` and ``import-captions`` on the ``hmu data`` group."""
    fmt = argparse.RawDescriptionHelpFormatter

    split = sub.add_parser(
        "split", help="write forget/retain id files for toxic concepts",
        description="Split a HumanML3D-layout dataset into forget (toxic) and retain ids by"
        " matching concept keywords against its captions.",
        epilog=_SPLIT_EPILOG, formatter_class=fmt,
    )
    _add_common_args(split)
    split.add_argument("--splits", nargs="+", default=("train_val", "test"), metavar="SPLIT",
                       help="split files to divide (default: train_val test)")
    split.add_argument("--union-name", default="union",
                       help="name of the union set when several concepts are given")
    split.add_argument("--out", type=Path, default=None,
                       help="output folder (default DATA/kw_splits)")
    split.set_defaults(run=run_split)

    stats = sub.add_parser(
        "stats", help="concept statistics and the paper's Figure 2 charts",
        description="Count toxic ids per concept and keyword over one split and draw the"
        " paper's Figure 2 (pie of the toxic share, bars per keyword).",
        epilog=_STATS_EPILOG, formatter_class=fmt,
    )
    _add_common_args(stats)
    stats.add_argument("--split", default="all", help="split file to count (default: all)")
    stats.add_argument("--out", type=Path, required=True,
                       help="output folder for stats.json and PNGs")
    stats.add_argument("--compare-modes", action="store_true",
                       help="also record, per keyword, the ids only one mode matches, with"
                       " sample captions")
    stats.add_argument("--no-figures", action="store_true", help="write stats.json only")
    stats.add_argument("--title", default=None, help="figure title prefix")
    stats.set_defaults(run=run_stats)

    imp = sub.add_parser(
        "import-captions", help="write a captions-only dataset from a .jsonl.gz corpus",
        description="Write a captions-only HumanML3D-layout directory (texts/ and split files)"
        " from a caption corpus, after verifying its checksum.",
        epilog=_IMPORT_EPILOG, formatter_class=fmt,
    )
    imp.add_argument("corpus", metavar="FILE.jsonl.gz", help="the caption corpus")
    imp.add_argument("--out", type=Path, required=True, help="directory to create")
    imp.add_argument("--checksums", default=None,
                     help="JSON with sha256_gz (default: the .json beside the corpus)")
    imp.add_argument("--splits-from", default=None, metavar="DIR",
                     help="folder with all.txt, train.txt, ... (default: the corpus's folder)")
    imp.add_argument("--no-verify", action="store_true", help="skip the checksum check")
    imp.add_argument("--overwrite", action="store_true",
                     help="replace an existing --out that hmu wrote (never anything else)")
    imp.set_defaults(run=run_import)
