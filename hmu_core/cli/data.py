"""``hmu data``: build, split and describe datasets in the HumanML3D layout.

The sub-verbs live in their own modules: ``data_synth`` (``synth``) and ``data_split``
(``split``, ``stats``, ``import-captions``).
"""

from __future__ import annotations

import argparse

from hmu_core.cli import data_split, data_synth


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu data`` and its sub-verbs."""
    parser = sub.add_parser(
        "data",
        help="build, split and describe datasets (synthetic, HumanML3D, Motion-X)",
        description="Build, split and describe datasets in the HumanML3D layout.",
    )
    data_sub = parser.add_subparsers(dest="data_verb", metavar="DATA_VERB", required=True)
    data_synth.add_parser(data_sub)
    data_split.add_parser(data_sub)
