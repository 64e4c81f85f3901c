"""Split files and Figure 2 statistics on the tiny handmade dataset (with and without motions)."""

from __future__ import annotations

import json

import pytest

from hmu_core.cli import data_split
from hmu_core.data.concepts import BUILTIN_CONCEPTS, MatchMode, resolve_concepts
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.data.splits import write_concept_splits
from hmu_core.data.stats import dataset_stats, mode_differences, write_stats

VIOLENCE = [BUILTIN_CONCEPTS["violence"]]


def test_split_files_written(tiny_dataset, tmp_path):
    out = tmp_path / "kw"
    data = HumanML3D(tiny_dataset)
    results = write_concept_splits(data, ["train", "test"], resolve_concepts(["kick", "punch"]),
                                   MatchMode.OFFICIAL, out, union_name="violence")
    assert results[0].forget == {"kick": 2, "punch": 1, "violence": 3}
    read = {p.name: p.read_text().split() for p in out.glob("*.txt")}
    assert read["train-w-kick.txt"] == ["000001", "M000001"]
    assert read["train-wo-kick.txt"] == ["000002", "000003"]
    assert read["train-w-violence.txt"] == ["000001", "000003", "M000001"]
    assert read["train-wo-violence.txt"] == ["000002"]
    # 000005: "Kicks" capitalised, but its token field has the lemma kick/VERB
    assert read["test-w-kick.txt"] == ["000005"]
    summary = json.loads((out / "split_summary.json").read_text())
    assert summary["splits"]["train"]["keywords"]["kick"]["kick"]["matching"] == 2
    assert not list(out.glob(".*tmp"))


def test_word_mode_split_differs_on_substrings(tiny_dataset, tmp_path):
    data = HumanML3D(tiny_dataset)
    for mode, expected in (("official", ["000001", "000002", "000003", "M000001"]),
                           ("word", ["000001", "000003", "M000001"])):
        write_concept_splits(data, ["train"], VIOLENCE, mode, tmp_path / mode)
        assert (tmp_path / mode / "train-w-violence.txt").read_text().split() == expected


def test_stats_json_and_figures(tiny_dataset, tmp_path):
    data = HumanML3D(tiny_dataset)
    stats = dataset_stats(data, "all", VIOLENCE, "official", compare_modes=True)
    block = stats["all"]["concepts"]["violence"]
    assert block["ids"] == {"matching": 5, "considered": 6, "share": 5 / 6}
    assert block["keywords"]["kick"]["matching"] == 3
    assert block["keywords"]["hit"]["matching"] == 1  # "white"
    assert block["keywords"]["jab"]["matching"] == 1
    assert stats["originals"]["concepts"]["violence"]["ids"]["considered"] == 5
    assert stats["has_motions"] is True
    diff = stats["mode_differences"]["violence"]["hit"]
    assert (diff["official_only"], diff["word_only"]) == (1, 0)
    assert diff["samples"]["official_only"][0]["trigger"] == "white"
    written = write_stats(tmp_path / "st", stats, title="tiny")
    assert {p.name for p in written} == {"stats.json", "violence_pie.png", "violence_keywords.png"}
    for path in written[1:]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "st" / "stats.json").read_text())["all"] == stats["all"]


def test_mode_differences_explains_inflections():
    captions = {"1": ["a man kicks"], "2": ["white"], "3": ["Kick it"], "4": ["a kick"]}
    table = mode_differences(captions, BUILTIN_CONCEPTS["violence"])
    kick = table["kick"]
    assert (kick["official"], kick["word"], kick["plain_word"]) == (2, 3, 2)
    assert kick["word_only"] == 1 and kick["samples"]["word_only"][0]["trigger"] == "Kick"
    assert table["hit"]["official_only"] == 1


@pytest.mark.parametrize("verb", ["split", "stats", "import-captions"])
def test_cli_help_has_examples(verb, capsys):
    parser = _parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([verb, "--help"])
    assert exc.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_cli_verbs_on_captions_only(tiny_captions_only, tmp_path, capsys):
    parser = _parser()
    args = parser.parse_args(["split", str(tiny_captions_only), "--splits", "train",
                              "--mode", "word", "--out", str(tmp_path / "kw")])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "no motions" in out and "train: violence: forget 3 / retain 1" in out
    args = parser.parse_args(["stats", str(tiny_captions_only), "--out", str(tmp_path / "st"),
                              "--concepts", "kick", "punch"])
    assert args.run(args) == 0
    stats = json.loads((tmp_path / "st" / "stats.json").read_text())
    assert stats["has_motions"] is False
    assert stats["all"]["concepts"]["kick"]["ids"]["matching"] == 3
    assert (tmp_path / "st" / "punch_keywords.png").is_file()


def _parser():
    import argparse

    parser = argparse.ArgumentParser(prog="hmu data")
    data_split.add_parser(parser.add_subparsers(dest="data_verb", required=True))
    return parser
