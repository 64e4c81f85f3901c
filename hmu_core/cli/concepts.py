"""``hmu concepts``: the built-in toxic concepts (and those of concept files) with keywords.

What ``--concept NAME`` accepts everywhere; a TOML/JSON file is listed the same way, so a
studio can check its own concepts before unlearning. Torch-free.
"""

from __future__ import annotations

import argparse

_EPILOG = """examples:
  hmu concepts
  hmu concepts my_concepts.toml

A concept file holds a table of concepts:
  [concepts.fight]
  keywords = ["kick", "punch", "fight"]
  min_occurrences = 1
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu concepts``."""
    p = sub.add_parser("concepts", help="list the built-in toxic concepts and their keywords",
                       description="List the built-in concepts (or those of TOML/JSON concept "
                       "files) with their keywords.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="TOML/JSON concept files to list instead of the built-ins")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print one concept per line: name, keywords, min_occurrences when not 1."""
    from hmu_core.data.concepts import BUILTIN_CONCEPTS, load_concepts
    from hmu_core.errors import ConfigError

    concepts = dict(BUILTIN_CONCEPTS)
    if args.files:
        concepts = {}
        for name in args.files:
            if not name.lower().endswith((".toml", ".json")):
                raise ConfigError(f"{name}: a concept file ends in .toml or .json")
            concepts.update(load_concepts(name))
    width = max(len(name) for name in concepts)
    for concept in concepts.values():
        extra = f"  (min_occurrences {concept.min_occurrences})" \
            if concept.min_occurrences != 1 else ""
        print(f"{concept.name:{width}s}  {', '.join(concept.keywords)}{extra}")
    return 0
