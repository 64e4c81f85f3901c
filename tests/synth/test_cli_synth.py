"""``hmu data synth``: argument mapping, summary line, refusal to overwrite."""

from __future__ import annotations

import pytest

from hmu_core.cli.main import build_parser, main
from hmu_core.synth import generate


def test_help_lists_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["data", "synth", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "hmu data synth --size tiny --seed 0 --out" in out and "--toxic-share" in out


def test_arguments_reach_the_library_and_a_summary_is_printed(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake(out_dir, size, seed, toxic_share, overwrite=False, progress=None, workers=1):
        seen.update(out_dir=out_dir, size=size, seed=seed, toxic_share=toxic_share,
                    overwrite=overwrite, workers=workers)
        progress("writing clips", 1, 3000)
        return generate.SynthSummary(out_dir, 3000, 240, 350000, 12.5)

    monkeypatch.setattr(generate, "write_synthetic_dataset", fake)
    code = main(["data", "synth", "--size", "small", "--seed", "7", "--out",
                 str(tmp_path / "d"), "--toxic-share", "0.1", "--overwrite", "--workers", "3"])
    assert code == 0
    assert seen == {"out_dir": tmp_path / "d", "size": "small", "seed": 7, "toxic_share": 0.1,
                    "overwrite": True, "workers": 3}
    assert "wrote 3000 clips (240 toxic, 350000 frames" in capsys.readouterr().out


def test_existing_directory_is_refused_with_exit_2(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert main(["data", "synth", "--out", str(tmp_path / "d")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["data", "synth", "--out", str(tmp_path / "e"), "--toxic-share", "2"]) == 2
