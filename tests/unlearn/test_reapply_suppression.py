"""``reapply_suppression``: a recorded suppression redone without data gives the same weights."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from hmu_core.data.concept_data import load_concept_data
from hmu_core.errors import ConfigError
from hmu_core.models.model_set import load_model_set
from hmu_core.unlearn.code_stats import SampleProtocol
from hmu_core.unlearn.sets import make_suppress_set, reapply_suppression
from hmu_core.unlearn.suppress_model import SuppressConfig


@pytest.fixture(scope="module")
def original(momask_set: Path, unlearn_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """A suppression made from data (r 4 on every layer of the micro set)."""
    loaded = load_model_set(momask_set)
    config = SuppressConfig(r={0: 4, 1: 4, 2: 4}, protocol=SampleProtocol(repeats=2))
    out = tmp_path_factory.mktemp("suppressed") / "set"
    return make_suppress_set(loaded, load_concept_data(unlearn_data, ["violence_motionx"]),
                             config, out, text_encoder=None,
                             cache_dir=out.parent / "cache")


def _states(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    loaded = load_model_set(path)
    return {part: loaded.model(part).state_dict() for part in loaded.parts}


def test_reapplied_record_gives_the_same_weights(original, momask_set, tmp_path):
    assert sum(len(c) for c in original.result.codes.values()) == 12
    again = reapply_suppression(load_model_set(momask_set), original.record, tmp_path / "again")
    want, got = _states(original.path), _states(again.path)
    assert sorted(want) == sorted(got) == ["length_estimator", "res", "trans", "vq"]
    for part in want:
        assert sorted(want[part]) == sorted(got[part]), part
        for key, tensor in want[part].items():
            assert torch.equal(tensor, got[part][key]), f"{part} {key}"
    edited = want["trans"]["output_process.poseFinal.bias"]
    base = _states(momask_set)["trans"]["output_process.poseFinal.bias"]
    assert int((edited != base).sum()) == len(original.result.codes[0]) == 4  # the edit is there
    record = json.loads((again.path / "unlearning.json").read_text(encoding="utf-8"))
    assert record["results"] == original.record["results"]
    assert record["edits"] == original.record["edits"]
    assert record["reapplied"]["original_source"] == original.record["source"]


def test_another_model_or_edit_is_refused(original, momask_set, tmp_path):
    loaded = load_model_set(momask_set)
    other = copy.deepcopy(original.record)
    other["edits"][0]["sha256_before"] = "0" * 64  # recorded on another model
    with pytest.raises(ConfigError, match="not the one the record was made on"):
        reapply_suppression(loaded, other, tmp_path / "a")
    other = copy.deepcopy(original.record)
    codes = other["results"]["suppressed_codes"]["0"]
    codes[0] = next(c for c in range(32) if c not in codes)  # a different edit
    with pytest.raises(ConfigError, match="differs from the recorded one"):
        reapply_suppression(loaded, other, tmp_path / "b")
    with pytest.raises(ConfigError, match="not a suppression record"):
        reapply_suppression(loaded, {**original.record, "method": "lcr"}, tmp_path / "c")
    with pytest.raises(ConfigError, match="bias"):
        reapply_suppression(loaded, {**original.record, "results": {
            **original.record["results"], "bias": -1.0}}, tmp_path / "d")
    assert not any(tmp_path.iterdir())  # nothing written on refusal


def test_the_shipped_record_reapplies_to_the_default_model(tmp_path):
    from hmu_core.assets import DEFAULT_UNLEARNING, default_model_dir

    record = json.loads(DEFAULT_UNLEARNING.read_text(encoding="utf-8"))
    made = reapply_suppression(load_model_set(default_model_dir()), record, tmp_path / "safe")
    assert record["method"] == "suppress" and record["parameters"]["r"] == {
        "0": 32, "1": 32, "2": 32, "3": 32}
    assert [c["name"] for c in record["concepts"]] == ["violence_motionx"]
    assert {q: len(c) for q, c in made.result.items()} == {0: 32, 1: 32, 2: 32, 3: 32}
    assert (made.path / "unlearning.json").is_file()


def test_relative_source_drops_the_machine_path(tmp_path):
    from hmu_core.unlearn.record import relative_source

    source = {"model_dir": str(tmp_path / "set"), "parts": {"vq": str(tmp_path / "set/vq/x.tar"),
              "res": "/elsewhere/r.tar"}, "text_encoder": "minilm"}
    assert relative_source(source, tmp_path) == {
        "model_dir": "set", "parts": {"vq": "set/vq/x.tar", "res": "/elsewhere/r.tar"},
        "text_encoder": "minilm"}
