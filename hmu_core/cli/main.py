"""Entry point of the ``hmu`` command: builds the verb parsers and maps HmuError to exit 2.

Verb modules import torch lazily inside ``run`` so that ``hmu --help`` stays fast.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Sequence

from hmu_core import __version__
from hmu_core.cli import benchmark as benchmark_cli
from hmu_core.cli import clips as clips_cli
from hmu_core.cli import common
from hmu_core.cli import concepts as concepts_cli
from hmu_core.cli import data as data_cli
from hmu_core.cli import demo as demo_cli
from hmu_core.cli import evaluate as evaluate_cli
from hmu_core.cli import export as export_cli
from hmu_core.cli import generate as generate_cli
from hmu_core.cli import keys as keys_cli
from hmu_core.cli import models as models_cli
from hmu_core.cli import train as train_cli
from hmu_core.cli import unlearn as unlearn_cli
from hmu_core.errors import HmuError

VERB_GROUPS = (demo_cli, data_cli, models_cli, concepts_cli, train_cli, generate_cli,
               unlearn_cli, evaluate_cli, benchmark_cli, export_cli, keys_cli, clips_cli)


@functools.cache
def build_parser() -> argparse.ArgumentParser:
    """The full ``hmu`` argument parser with every verb group registered.

    Built once per process: its ~460 options cost 13 ms, and code that runs ``hmu`` in-process
    (the test suite, a notebook, a pipeline script) parses hundreds of command lines. Parsing
    leaves the parser unchanged, and every default is immutable (tuples, not lists), so no
    command can leak a value into the next.
    """
    parser = common.Parser(
        prog="hmu",
        description="Human Motion Unlearning: make text-to-motion generators safe.",
        epilog="Run 'hmu VERB --help' for the options and examples of each verb.",
    )
    parser.add_argument("--version", action="version", version=f"hmu {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details (INFO)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for group in VERB_GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hmu`` with ``argv``; returns the process exit code (0 ok, 2 user error or an OS
    error such as a read-only or full disk, 130 on Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except HmuError as error:
        print(f"hmu: error: {common.one_line(str(error))}", file=sys.stderr)
        return 2
    except OSError as error:  # the disk, not hmu: read-only, full, a file where a dir must be
        print(f"hmu: error: {common.one_line(common.os_error_line(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hmu: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
