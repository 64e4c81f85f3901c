"""The written synthetic dataset: layout, metadata, round trips, determinism, stats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hmu_core.data.concepts import ConceptSplit, MatchMode, resolve_concepts
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.data.stats import dataset_stats
from hmu_core.errors import ConfigError, DataError
from hmu_core.motion.features import features_to_joints, process_joints
from hmu_core.motion.skeleton import BONE_LENGTHS, PARENTS
from hmu_core.synth.families import FAMILY_BY_NAME, TOXIC_FAMILIES
from hmu_core.synth.generate import (
    STD_FLOOR,
    read_clip_records,
    write_synthetic_dataset,
)
from hmu_core.synth.motions import animate_clip
from hmu_core.synth.plan import plan_dataset


def test_dataset_reads_back_through_the_humanml3d_reader(synth_small):
    root, summary = synth_small
    data = HumanML3D(root)
    assert data.has_motions and data.feature_dim == 263
    ids = data.ids("all")
    assert len(ids) == summary.clips == 48
    assert sorted(data.ids("train_val")) == sorted(data.ids("train") + data.ids("val"))
    frames = 0
    for motion_id in ids:
        features, joints = data.features(motion_id), data.joints(motion_id)
        assert features.dtype == np.float32 and features.shape[1] == 263
        assert joints.shape == (features.shape[0], 22, 3)
        frames += features.shape[0]
        captions = data.captions(motion_id)
        assert sum(c.whole_clip for c in captions) == 3
    assert frames == summary.feature_frames
    assert data.mean().shape == data.std().shape == (263,)
    assert data.std().min() >= STD_FLOOR
    np.testing.assert_allclose(data.std()[4:67], data.std()[4])  # group-averaged, as official


def test_features_round_trip_to_the_joints(synth_small):
    root, _ = synth_small
    data = HumanML3D(root)
    records = read_clip_records(root)
    plans = {c.clip_id: c for c in plan_dataset(48, 5, 0.3).clips}
    checked = 0
    for motion_id in data.ids("all"):
        features, joints = data.features(motion_id), data.joints(motion_id)
        np.testing.assert_array_equal(features_to_joints(features), joints)
        # new_joints keep the official target skeleton and stand on the floor.
        bones = np.linalg.norm(joints[:, 1:] - joints[:, list(PARENTS[1:])], axis=-1)
        np.testing.assert_allclose(bones, np.broadcast_to(BONE_LENGTHS[1:], bones.shape),
                                   atol=2e-4)
        assert joints[:, :, 1].min() > -1e-4
        # Regenerating the clip's joints and processing them gives the stored joints back
        # (until a heading passes 180 degrees, where the official recovery drifts: circles).
        plan = plans[motion_id]
        assert records[motion_id]["segments"][0]["family"] == plan.segments[0].family
        if any(s.params.get("direction") == "circle" for s in plan.segments):
            continue
        seq = np.random.SeedSequence(plan.seed).spawn(2)[0]
        positions = animate_clip(plan, np.random.default_rng(seq))
        processed = process_joints(positions)
        np.testing.assert_allclose(joints, processed.global_positions[:-1], atol=1e-4)
        checked += 1
    assert checked > 40


def test_metadata_describes_every_clip(synth_small):
    root, summary = synth_small
    records = read_clip_records(root)
    meta = json.loads((root / "synth_meta.json").read_text())
    assert meta["seed"] == 5 and meta["counts"]["clips"] == len(records) == 48
    assert meta["counts"]["toxic_clips"] == summary.toxic_clips == sum(
        r["toxic"] for r in records.values())
    assert {f["name"] for f in meta["families"]} == set(FAMILY_BY_NAME)
    data = HumanML3D(root)
    for motion_id, record in records.items():
        n = data.features(motion_id).shape[0]
        assert record["feature_frames"] == n == record["joint_frames"] - 1
        spans = [(s["start"], s["end"]) for s in record["segments"]]
        assert spans[0][0] == 0 and spans[-1][1] == record["joint_frames"]
        assert record["toxic"] == any(FAMILY_BY_NAME[s["family"]].toxic
                                      for s in record["segments"])
        assert bool(record["caption_keywords"]) == record["toxic"]
    implicit = json.loads((root / "implicit_captions.json").read_text())
    assert set(implicit) == set(TOXIC_FAMILIES)
    texts = {line.split("#")[0] for i in records for line in data.caption_lines(i)}
    assert not texts & {c for captions in implicit.values() for c in captions}


@pytest.mark.parametrize("mode", [MatchMode.OFFICIAL, MatchMode.WORD])
def test_stats_counts_equal_the_metadata(synth_small, mode):
    root, summary = synth_small
    records = read_clip_records(root)
    toxic_ids = {i for i, r in records.items() if r["toxic"]}
    concepts = resolve_concepts(["violence_motionx"])
    stats = dataset_stats(HumanML3D(root), "all", concepts, mode)
    assert stats["all"]["toxic_any"]["matching"] == len(toxic_ids) == summary.toxic_clips
    assert stats["all"]["toxic_any"]["considered"] == len(records)
    data = HumanML3D(root)
    result = ConceptSplit(concepts, mode).split({i: data.caption_lines(i) for i in records})
    assert set(result.forget_ids) == toxic_ids
    for split in ("train", "test"):
        ids = data.ids(split)
        counted = dataset_stats(data, split, concepts, mode)["all"]["toxic_any"]["matching"]
        assert counted == sum(records[i]["toxic"] for i in ids)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_seed_writes_identical_files_and_another_seed_differs(tmp_path):
    # b also checks that parallel generation writes the same bytes as sequential generation.
    a = write_synthetic_dataset(tmp_path / "a", 10, seed=2, toxic_share=0.7)
    write_synthetic_dataset(tmp_path / "b", 10, seed=2, toxic_share=0.7, workers=2)
    write_synthetic_dataset(tmp_path / "c", 10, seed=3, toxic_share=0.7)
    files_a, files_b, files_c = (_files(tmp_path / x) for x in "abc")
    assert a.clips == 10 and files_a == files_b
    assert files_a["new_joint_vecs/000000.npy"] != files_c["new_joint_vecs/000000.npy"]
    assert files_a["texts/000000.txt"] != files_c["texts/000000.txt"]


def test_existing_directory_needs_overwrite(tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists"):
        write_synthetic_dataset(out, 8, seed=0, toxic_share=0.9)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="not written by hmu"):  # never a user's directory
        write_synthetic_dataset(out, 8, seed=0, toxic_share=0.9, overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"
    ours = tmp_path / "ours"
    write_synthetic_dataset(ours, 8, seed=1, toxic_share=0.9)
    (ours / "keep.txt").write_text("stale")
    write_synthetic_dataset(ours, 8, seed=0, toxic_share=0.9, overwrite=True)
    assert not (ours / "keep.txt").exists() and (ours / "all.txt").is_file()
