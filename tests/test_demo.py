"""``hmu demo`` end to end at a reduced size (the README's first command runs the full one)."""

from __future__ import annotations

import json

import pytest

from hmu_core.cli.main import main


@pytest.mark.slow
def test_demo_writes_the_report_and_reuses_its_work(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--size", "tiny", "--limit", "6", "--repeats", "1",
            "--per-kind", "1", "--no-progress"]
    assert main(args) == 0
    first = capsys.readouterr().out
    report = (out / "report" / "README.md").read_text()
    assert "| measure | original | unlearned (LCR) |" in report
    figures = json.loads((out / "report" / "figures.json").read_text())["figures"]
    for name in ("original", "unlearned"):
        for key in ("forget_toxicity", "implicit_attack", "retain_action_accuracy"):
            assert 0.0 <= figures[name][key] <= 1.0
    gifs = sorted((out / "report").glob("*.gif"))
    assert [g.name.split("_")[0] for g in gifs] == ["explicit", "implicit", "safe"]
    assert (out / "bundles" / "original" / "manifest.json").is_file()
    unlearned = next(p for p in (out / "bundles").iterdir() if p.name.startswith("lcr-"))
    manifest = json.loads((unlearned / "manifest.json").read_text())
    assert manifest["unlearning"]["method"] == "lcr"
    assert "rendering" in first and "exporting" in first

    assert main(args) == 0  # the second run reuses data, model, bundles and GIFs
    second = capsys.readouterr().out
    assert "rendering" not in second and "exporting" not in second and "LCR" not in second
    assert json.loads((out / "report" / "figures.json").read_text())["figures"] == figures
