"""``hmu train``: argument mapping and exit codes (the library is stubbed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hmu_core.cli.main import main
from hmu_core.train.vq import TrainResult


def test_vq_arguments_map_to_preset_and_options(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_train_vq(data, preset, options, *, preset_name, runtime):
        seen.update(data=data, preset=preset, options=options, name=preset_name)
        return TrainResult(Path(options.out_dir), 5, 1, 0.1, {"val_loss_rec": 0.5})

    monkeypatch.setattr("hmu_core.train.vq.train_vq", fake_train_vq)
    code = main(["train", "vq", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--preset", "tiny", "--seed", "9", "--max-iters", "5", "--batch-size", "4",
                 "--device", "cpu", "--resume", "--no-progress"])
    assert code == 0
    assert seen["data"] == tmp_path and seen["name"] == "tiny"
    assert seen["preset"].schedule.max_iters == 5 and seen["preset"].schedule.batch_size == 4
    assert seen["options"].seed == 9 and seen["options"].resume
    assert "trained vq (tiny) for 5 iterations" in capsys.readouterr().out


def test_transformer_arguments_and_text_encoder(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("hmu_core.train.transformers.train_transformer",
                        lambda kind, data, vq, enc, preset, options, *, preset_name, runtime:
                        seen.update(kind=kind, vq=vq, enc=enc) or TrainResult(
                            Path(options.out_dir), 1, 0, 0.0, {}))
    import sys
    import types

    registry = types.ModuleType("hmu_core.text.registry")
    registry.load_text_encoder = lambda spec: f"encoder:{spec}"
    monkeypatch.setitem(sys.modules, "hmu_core.text.registry", registry)
    code = main(["train", "bamm", "--data", str(tmp_path), "--vq", str(tmp_path / "vq"),
                 "--out", str(tmp_path / "b"), "--text-encoder", "clip:/x.pt", "--device",
                 "cpu", "--no-progress"])
    assert code == 0
    assert seen == {"kind": "bamm", "vq": tmp_path / "vq", "enc": "encoder:clip:/x.pt"}


def test_user_errors_exit_2(tmp_path, capsys):
    assert main(["train", "vq", "--data", str(tmp_path / "missing"), "--out",
                 str(tmp_path / "o"), "--device", "cpu"]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["train", "vq", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--max-iters", "0"]) == 2
    assert main(["train", "vq", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--device", "cpu", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "mask", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2  # --vq is required
