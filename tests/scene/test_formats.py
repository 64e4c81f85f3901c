"""FBX, GLB and BVH: export through Blender's exporters, re-import with the right importer
options, and get the same world joints back; files are atomic and the scene state is restored."""

from __future__ import annotations

import json
import os
import struct

import bpy
import numpy as np
import pytest

from exporter.scene import formats, keying, rig
from hmu_core.errors import ConfigError

pytestmark = pytest.mark.blender


@pytest.fixture
def keyed(walk_motion):
    rest = rig.rest_joints_from_offsets(walk_motion.smpl_pose().rest_offsets)
    arm = rig.build_smpl_armature(rest_joints=rest)
    action = keying.key_motion(arm, walk_motion, action_name="walk",
                               properties={"hmu_bundle_sha256": "cd" * 32})
    return arm, action


@pytest.mark.parametrize("fmt", ["fbx", "glb", "bvh"])
def test_export_and_reimport_gives_the_same_joints(fmt, keyed, walk_motion, world, tmp_path):
    arm, action = keyed
    frames = np.arange(walk_motion.num_frames) + 1.0
    path = formats.export_armature(arm, action, tmp_path / f"walk.{fmt}", fmt)
    assert [p.name for p in tmp_path.iterdir()] == [f"walk.{fmt}"]  # no temporary left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain open() would make it
    imported = formats.import_armature(path)
    assert imported != arm and rig.is_smpl_armature(imported)
    got = rig.world_joints(imported, frames)
    err = np.abs(got - world(walk_motion.smpl_pose().joints())).max()
    assert err < 1e-3, f"{fmt} round trip: max joint error {err:.3g} m"


def _glb_json(path) -> dict:
    data = path.read_bytes()
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    return json.loads(data[20:20 + length])


def test_glb_carries_the_action_properties_as_animation_extras(keyed, tmp_path):
    arm, action = keyed
    path = formats.export_armature(arm, action, tmp_path / "walk.glb", "glb")
    (animation,) = _glb_json(path)["animations"]
    assert animation["name"] == "walk"
    extras = animation["extras"]
    assert extras["hmu_prompt"] == "a person walks and turns left"
    assert extras["hmu_bundle_sha256"] == "cd" * 32 and extras["hmu_seed"] == 7
    assert json.loads(extras["hmu_unlearning"]) == {"method": "lcr"}
    assert {n["name"] for n in _glb_json(path)["nodes"]} >= set(rig.SMPL_JOINT_NAMES)


def test_export_restores_action_selection_and_frame_range(keyed, walk_motion, tmp_path,
                                                          empty_scene):
    arm, action = keyed
    other = keying.key_motion(arm, walk_motion, action_name="other")  # now the active action
    empty_scene.frame_start, empty_scene.frame_end, empty_scene.frame_current = 5, 9, 7
    arm.select_set(False)
    formats.export_armature(arm, action, tmp_path / "walk.bvh", "bvh")
    assert arm.animation_data.action == other
    assert (empty_scene.frame_start, empty_scene.frame_end, empty_scene.frame_current) == (5, 9, 7)
    assert not arm.select_get()
    header = (tmp_path / "walk.bvh").read_text().split("MOTION")[1].split("\n")
    assert header[1] == f"Frames: {walk_motion.num_frames}"  # the action's range, not 5..9


def test_bad_requests_and_failed_exports_leave_nothing(keyed, tmp_path, monkeypatch):
    arm, action = keyed
    with pytest.raises(ConfigError, match="unknown export format"):
        formats.export_armature(arm, action, tmp_path / "walk.obj", "obj")
    with pytest.raises(ConfigError, match=r"must end in \.glb"):
        formats.export_armature(arm, action, tmp_path / "walk.fbx", "glb")

    def half_written(fmt, path, start, end, name):
        with open(path, "wb") as handle:
            handle.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(formats, "_run_exporter", half_written)
    with pytest.raises(RuntimeError, match="disk full"):
        formats.export_armature(arm, action, tmp_path / "walk.fbx", "fbx")
    assert list(tmp_path.iterdir()) == []
    assert arm.animation_data.action == action and bpy.context.scene.frame_start == 1
