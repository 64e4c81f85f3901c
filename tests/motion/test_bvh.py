"""BVH writer: bvhio reads it back, world joints match, header sane, atomic."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hmu_core.motion import bvh, quaternion
from hmu_core.motion.motion import Motion
from hmu_core.motion.smpl import JOINT_NAMES

bvhio = pytest.importorskip("bvhio")


@pytest.fixture(scope="module")
def motion(conformance_dir):
    with np.load(conformance_dir / "humanml3d_features.npz") as npz:
        joints = npz["sample_012314__new_joints"]
    # Turn it a full 360° as well, so the root Euler angles have to unwrap.
    num = len(joints)
    q = quaternion.from_axis_angle_about(np.array([0.0, 1.0, 0.0]), np.linspace(0, 2 * np.pi, num))
    centre = joints[:1, :1] * np.array([1.0, 0.0, 1.0])
    joints = quaternion.qrot(q[:, None], joints - centre) + centre
    return Motion.from_joints(joints, fps=20, text="walk and turn")


def _read_world(path, names):
    root = bvhio.readAsHierarchy(str(path))
    frames = []
    for f in range(len(root.Keyframes)):
        root.loadPose(f, recursive=True)
        pos = {j.Name: np.array(j.PositionWorld) for j, _, _ in root.layout()}
        frames.append(np.stack([pos[n] for n in names]))
    return np.array(frames)


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_bvhio_round_trip(tmp_path, motion, scale):
    path = tmp_path / "clip.bvh"
    bvh.write_bvh(path, motion, scale=scale)
    world = _read_world(path, JOINT_NAMES) / scale
    assert world.shape == (motion.num_frames, 24, 3)
    err = np.linalg.norm(world[:, :22] - motion.joints, axis=-1)
    assert err.max() < 0.01, f"max BVH round-trip error {err.max():.3g} m"
    hands = np.linalg.norm(world[:, 22:] - world[:, 20:22], axis=-1)
    np.testing.assert_allclose(hands, 0.08, atol=1e-4)


def test_header_and_channels(tmp_path, motion):
    path = tmp_path / "clip.bvh"
    bvh.write_bvh(path, motion)
    text = path.read_text()
    head, _, body = text.partition("MOTION\n")
    assert head.startswith("HIERARCHY\nROOT pelvis\n")
    assert head.count("{") == head.count("}")
    names = re.findall(r"(?:ROOT|JOINT) (\w+)", head)
    assert sorted(names) == sorted(JOINT_NAMES)
    channels = re.findall(r"CHANNELS (\d+) ([\w ]+)", head)
    assert channels[0] == ("6", "Xposition Yposition Zposition Zrotation Xrotation Yrotation")
    assert all(c == ("3", "Zrotation Xrotation Yrotation") for c in channels[1:])
    assert head.count("End Site") == 5
    lines = body.strip().split("\n")
    assert lines[0] == f"Frames: {motion.num_frames}"
    assert float(lines[1].split(":")[1]) == pytest.approx(1 / 20)
    values = np.array([[float(v) for v in line.split()] for line in lines[2:]])
    assert values.shape == (motion.num_frames, 6 + 3 * 23)
    np.testing.assert_allclose(values[:, :3], motion.joints[:, 0], atol=1e-5)
    # Continuous Euler angles: the root turns 360° smoothly (≈3.6°/frame plus the walk's own
    # yaw), and no channel wraps by a whole turn.
    steps = np.abs(np.diff(values[:, 3:], axis=0))
    assert steps[:, :3].max() < 30
    assert steps.max() < 180


def test_standing_turn_is_smooth(tmp_path, motion):
    joints = np.repeat(motion.joints[:1].astype(np.float64), 90, axis=0)
    q = quaternion.from_axis_angle_about(np.array([0.0, 1.0, 0.0]), np.linspace(0, 4 * np.pi, 90))
    centre = joints[:1, :1] * np.array([1.0, 0.0, 1.0])
    turning = Motion.from_joints(quaternion.qrot(q[:, None], joints - centre) + centre)
    path = tmp_path / "turn.bvh"
    bvh.write_bvh(path, turning)
    lines = path.read_text().partition("Frame Time:")[2].strip().split("\n")[1:]
    values = np.array([[float(v) for v in line.split()] for line in lines])
    assert np.abs(np.diff(values[:, 3:], axis=0)).max() < 10
    world = _read_world(path, JOINT_NAMES)
    assert np.linalg.norm(world[:, :22] - turning.joints, axis=-1).max() < 0.01


def test_euler_round_trip():
    q = quaternion.normalize(np.random.default_rng(0).normal(size=(500, 4)))
    m = quaternion.to_matrix(q)
    np.testing.assert_allclose(bvh.euler_zxy_to_matrix(bvh.matrix_to_euler_zxy(m)), m, atol=1e-12)
    # Gimbal lock.
    locked = bvh.euler_zxy_to_matrix(np.array([[0.3, np.pi / 2, 0.2], [0.1, -np.pi / 2, 0.4]]))
    # The continuous choice keeps the rotations.
    angles = bvh.matrix_to_euler_zxy(m.reshape(50, 10, 3, 3))
    cont = bvh.continuous_euler(angles)
    np.testing.assert_allclose(bvh.euler_zxy_to_matrix(cont), m.reshape(50, 10, 3, 3), atol=1e-12)
    back = bvh.euler_zxy_to_matrix(bvh.matrix_to_euler_zxy(locked))
    np.testing.assert_allclose(back, locked, atol=1e-7)


def test_failed_write_leaves_no_file(tmp_path, motion, monkeypatch):
    path = tmp_path / "clip.bvh"

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bvh, "bvh_text", boom)
    with pytest.raises(RuntimeError):
        bvh.write_bvh(path, motion)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_file(tmp_path, motion, monkeypatch):
    path = tmp_path / "clip.bvh"
    path.write_text("old")
    import hmu_core.atomic as atomic

    real_replace = atomic.os.replace

    def fail_replace(*args, **kwargs):
        raise OSError("rename failed")

    monkeypatch.setattr(atomic.os, "replace", fail_replace)
    with pytest.raises(OSError):
        bvh.write_bvh(path, motion)
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.bvh"]


_BLENDER_SCRIPT = """
import sys
import bpy
import numpy as np
from hmu_core.motion.smpl import JOINT_NAMES
bvh_path, out_path, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath=bvh_path, update_scene_fps=False, use_fps_scale=False)
arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
scene = bpy.context.scene
world = []
for f in range(frames):
    scene.frame_set(f + 1)
    world.append([list(arm.matrix_world @ arm.pose.bones[n].head) for n in JOINT_NAMES])
np.save(out_path, np.array(world))
"""


@pytest.mark.blender
@pytest.mark.slow
def test_blender_imports_with_default_axes(tmp_path, motion):
    """Blender's BVH importer, default axes (Y-up file -> Z-up scene), frame 1 = first frame."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("bpy")
    path = tmp_path / "clip.bvh"
    bvh.write_bvh(path, motion)
    script = tmp_path / "import.py"
    script.write_text(_BLENDER_SCRIPT)
    out = tmp_path / "world.npy"
    subprocess.run(
        [sys.executable, str(script), str(path), str(out), str(motion.num_frames)],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    world = np.load(out)
    y_up = world @ np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]).T  # Z-up -> Y-up
    err = np.linalg.norm(y_up[:, :22] - motion.joints, axis=-1)
    assert err.max() < 0.001, f"Blender BVH import max error {err.max():.3g} m"
