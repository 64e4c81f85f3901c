"""The ``hmu`` entry point: help works, HmuError becomes one line and exit code 2."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from hmu_core.cli import main as cli_main
from hmu_core.errors import DataError


def test_help_lists_verbs(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["--help"])
    assert exc.value.code == 0
    assert "data" in capsys.readouterr().out


def test_hmu_error_is_one_line_and_exit_2(monkeypatch, capsys):
    def failing_run(args):
        raise DataError("texts/000001.txt line 3: expected 4 '#'-separated fields")

    parser = cli_main.build_parser()
    args = parser.parse_args(["data", "synth", "--out", "x"])
    args.run = failing_run
    monkeypatch.setattr(cli_main, "build_parser", lambda: _FixedParser(args))
    assert cli_main.main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hmu: error: texts/000001.txt line 3: expected 4 '#'-separated fields"]


class _FixedParser:
    def __init__(self, args):
        self._args = args

    def parse_args(self, argv):
        return self._args


def test_console_entry_runs_as_module():
    result = subprocess.run(
        [sys.executable, "-m", "hmu_core.cli.main", "--version"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("hmu ")


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        yield parser.prog, action
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share a parser
                yield from _actions(sub)


def test_the_parser_is_built_once_and_no_parse_can_change_it():
    """``main`` reuses one parser per process, so a default that a command could mutate (a
    list) would leak into the next command; ``append`` actions copy theirs before adding."""
    assert cli_main.build_parser() is cli_main.build_parser()
    mutable = [f"{prog} {action.dest}" for prog, action in _actions(cli_main.build_parser())
               if isinstance(action.default, (list, dict, set))
               and not isinstance(action, argparse._AppendAction)]
    assert mutable == []
    first = vars(cli_main.build_parser().parse_args(["benchmark", "--data", "d", "--evaluator",
                                                     "e", "--models", "a=b", "--out", "o"]))
    first["r_sweep"] += (4,)
    again = vars(cli_main.build_parser().parse_args(["benchmark", "--data", "d", "--evaluator",
                                                     "e", "--models", "a=b", "--out", "o"]))
    assert again["r_sweep"] == ()
