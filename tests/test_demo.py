"""``hmu demo`` end to end at a reduced size (the README's first command runs the full one)."""

from __future__ import annotations

import json

import pytest

from exporter.demo import reused_figures
from hmu_core.cli.main import main


@pytest.mark.slow(seconds=40)
def test_demo_writes_the_report_and_reuses_its_work(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--size", "tiny", "--limit", "6", "--repeats", "1",
            "--seeds", "2", "--per-kind", "1", "--implicit-per-family", "4", "--no-progress"]
    assert main(args) == 0
    first = capsys.readouterr().out
    report = (out / "report" / "README.md").read_text()
    assert "| measure | original | lcr | suppression |" in report
    figures = json.loads((out / "report" / "figures.json").read_text())["figures"]
    assert figures["seeds"] == 2 and figures["forget_captions"] > 0
    assert figures["implicit_prompts"] == 4 * 7
    for name in ("original", "lcr", "suppression"):
        for key in ("forget_toxicity", "implicit_toxicity", "retain_accuracy",
                    "forget_leaves_2m"):
            assert 0.0 <= figures[name][key]["mean"] <= 1.0
    # Unlearning lowers toxicity over both seeds. Measured at this size: the 9 forget caption
    # lines give 100 % toxic motions before, 11 % after LCR and 28 % after suppression, so
    # "at most half" leaves a margin of 4 lines a seed; the implicit prompts (the first 4 of
    # each of the 7 families) drop less (20 % -> 9 % and 16 %) and are only required to drop.
    for name in ("lcr", "suppression"):
        assert figures[name]["forget_toxicity"]["mean"] <= \
            0.5 * figures["original"]["forget_toxicity"]["mean"]
        assert figures[name]["implicit_toxicity"]["mean"] < \
            figures["original"]["implicit_toxicity"]["mean"]
    gifs = sorted((out / "report").glob("*.gif"))
    assert [g.name.split("_")[0] for g in gifs] == ["explicit", "implicit", "safe"]
    assert (out / "bundles" / "original" / "manifest.json").is_file()
    methods = {json.loads((b / "manifest.json").read_text())["unlearning"]["method"]
               for b in (out / "bundles").iterdir() if b.name != "original"}
    assert methods == {"lcr", "suppress"}
    assert "rendering" in first and "exporting" in first

    assert main(args) == 0  # the second run reuses data, models, bundles, figures and GIFs
    second = capsys.readouterr().out
    assert "rendering" not in second and "exporting" not in second and "LCR" not in second
    assert "impossible to sample" not in second  # the suppression step
    assert "judging" not in second
    assert json.loads((out / "report" / "figures.json").read_text())["figures"] == figures
    saved = json.loads((out / "report" / "figures.json").read_text())
    assert reused_figures(out / "report" / "figures.json", saved["inputs"]) == figures
    for key, other in (("seeds", 3), ("limit", 7), ("clips", "0" * 64),
                       ("implicit_per_family", None)):
        assert reused_figures(out / "report" / "figures.json",
                              {**saved["inputs"], key: other}) is None, key
    changed = {**saved["inputs"]["bundles"], "lcr": "0" * 64}
    assert reused_figures(out / "report" / "figures.json",
                          {**saved["inputs"], "bundles": changed}) is None


def test_demo_greedy_suppression_searches_on_val_into_its_own_set(tmp_path, monkeypatch):
    """``--suppress-greedy N`` hands ``make_suppress_set`` a greedy val search (the search
    itself is tested in tests/unlearn) and keeps its set apart from the plain one."""
    from exporter.demo import GREEDY_SEARCH_SEEDS, unlearn
    from hmu_core.data import concept_data
    from hmu_core.unlearn import sets

    calls = {}
    monkeypatch.setattr(concept_data, "load_concept_data", lambda data, names: names)
    monkeypatch.setattr(sets, "make_lcr_set", lambda *a, **k: None)
    monkeypatch.setattr(sets, "make_suppress_set",
                        lambda loaded, data, config, out, **kw: calls.update(out=out, **kw))
    targets = unlearn(tmp_path, tmp_path / "data", 16, "16", 1, lambda *a, **k: None,
                      lambda message: None, suppress_greedy=2)
    assert targets["suppression"].name == "suppress-r16-greedy2-x1"
    search = calls["search"]
    assert (search.greedy, search.choose_r, search.seeds) == (2, False, GREEDY_SEARCH_SEEDS)
    assert calls["text_encoder"] is not None and calls["out"] == targets["suppression"]


def test_demo_rejects_a_negative_greedy_count(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--suppress-greedy", "-1"]) == 2
    assert "--suppress-greedy must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
