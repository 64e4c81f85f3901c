"""``hmu eval`` end to end on the default model (eval.json + eval.md) and bad inputs (exit code 2,
nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hmu_core.cli.main as main_mod
from hmu_core.cli import evaluate
from hmu_core.eval.report import EvalRequest, load_cached

from .conftest import DEFAULT_MODEL


@pytest.fixture
def hmu():
    return main_mod.main


def _args(data: Path, evaluator: Path, out: Path, *more: str) -> list[str]:
    return ["eval", "--model", str(DEFAULT_MODEL), "--data", str(data), "--split", "retain",
            "--concept", "violence_motionx", "--evaluator", str(evaluator), "--repeats", "1",
            "--batch-size", "4", "--mm-captions", "0", "--seed", "1", "--no-progress",
            "--out", str(out), *more]


def test_eval_end_to_end(hmu, eval_data: Path, micro_evaluator: Path, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    from hmu_core.eval import protocol

    ids = protocol.eval_dataset  # keep the run short: evaluate only the first 6 retain clips
    monkeypatch.setattr(protocol, "eval_dataset",
                        lambda dataset, clip_ids, ev, seed: ids(dataset, clip_ids[:6], ev, seed))
    out = tmp_path / "report"
    assert hmu(_args(eval_data, micro_evaluator, out, "--ncs-k", "1", "3")) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["split"] == "retain" and report["samples_per_repeat"] % 4 == 0
    measures = report["measures"]
    assert 0.0 <= measures["toxicity_rate"] <= 1.0
    assert set(measures["ncs"]) == {"1", "3"}
    assert 0.0 <= measures["retain_action_accuracy"] <= 1.0
    assert "implicit" not in measures  # attacks run on the forget split
    markdown = (out / "eval.md").read_text()
    assert "| FID ↓ |" in markdown and "retain action accuracy" in markdown
    request = evaluate._request(main_mod.build_parser().parse_args(
        _args(eval_data, micro_evaluator, out, "--ncs-k", "1", "3")))
    assert isinstance(request, EvalRequest) and load_cached(out, request) == report


@pytest.mark.parametrize("case", ["no_evaluator", "no_glove", "unknown_concept", "no_model",
                                  "zero_repeats"])
def test_bad_input_exits_2_and_writes_nothing(hmu, eval_data: Path, micro_evaluator: Path,
                                              tmp_path: Path, case: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    args = {"no_evaluator": _args(eval_data, tmp_path / "nowhere", out),
            "no_glove": _args(eval_data, micro_evaluator / "text_mot_match", out, "--glove",
                              str(tmp_path)),
            "unknown_concept": _args(eval_data, micro_evaluator, out, "--concept", "nosuch"),
            "no_model": [a if a != str(DEFAULT_MODEL) else str(tmp_path / "none")
                         for a in _args(eval_data, micro_evaluator, out)],
            "zero_repeats": _args(eval_data, micro_evaluator, out, "--repeats", "0")}[case]
    assert hmu(args) == 2
    assert not out.exists()
    error = capsys.readouterr().err
    assert error.startswith("hmu: error:")
    if case in ("no_evaluator", "no_glove"):
        assert "hmu train evaluator" in error
