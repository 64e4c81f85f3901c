"""Dataset planning: sizes, shares, families, durations, splits, determinism."""

from __future__ import annotations

from collections import Counter

import pytest

from hmu_core.errors import ConfigError
from hmu_core.synth.families import SAFE_FAMILIES, TOXIC_FAMILIES
from hmu_core.synth.plan import SIZES, clip_seed, plan_dataset


def test_tiny_plan_has_every_family_and_the_toxic_share():
    plan = plan_dataset("tiny", seed=0)
    assert len(plan.clips) == SIZES["tiny"] == 200
    toxic = [c for c in plan.clips if c.toxic]
    assert len(toxic) == 16  # 8 % of 200
    assert {c.label for c in toxic} == set(TOXIC_FAMILIES)
    assert set(SAFE_FAMILIES) <= {c.label for c in plan.clips if not c.toxic}
    assert any(len(c.segments) == 2 for c in plan.clips)  # composites
    for clip in plan.clips:
        assert 40 <= clip.num_frames <= 200  # 2-10 s at 20 fps
        assert 0.95 <= clip.bone_scale <= 1.05
        assert clip.segments[0].start == 0
        for a, b in zip(clip.segments[:-1], clip.segments[1:], strict=True):
            assert a.end == b.start
    assert [c.clip_id for c in plan.clips] == [f"{i:06d}" for i in range(200)]


def test_plan_is_deterministic_by_seed():
    a, b, c = plan_dataset("tiny", 3), plan_dataset("tiny", 3), plan_dataset("tiny", 4)
    assert a == b
    assert a.clips != c.clips
    assert a.clips[7].seed == clip_seed(3, 7) != clip_seed(4, 7)


def test_splits_are_disjoint_stratified_and_complete():
    plan = plan_dataset(400, seed=1, toxic_share=0.4)
    splits = {k: set(v) for k, v in plan.splits.items()}
    assert not (splits["train"] & splits["val"]) and not (splits["train"] & splits["test"])
    assert not (splits["val"] & splits["test"])
    assert splits["train"] | splits["val"] | splits["test"] == splits["all"]
    assert splits["train_val"] == splits["train"] | splits["val"]
    assert len(splits["train"]) / 400 == pytest.approx(0.80, abs=0.03)
    assert len(splits["test"]) / 400 == pytest.approx(0.15, abs=0.03)
    labels = {c.clip_id: c.label for c in plan.clips}
    test_labels = Counter(labels[i] for i in splits["test"])
    assert set(test_labels) == set(labels.values())  # every family is in the test split


def test_bad_plan_arguments_raise():
    with pytest.raises(ConfigError, match="unknown dataset size"):
        plan_dataset("huge", 0)
    with pytest.raises(ConfigError, match="outside"):
        plan_dataset("tiny", 0, toxic_share=1.5)
    with pytest.raises(ConfigError, match="every toxic family"):
        plan_dataset("tiny", 0, toxic_share=0.01)
