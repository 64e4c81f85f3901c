"""Fixtures of the Blender scene tests: bpy (skip without it), an empty scene per test, motions
(synthetic and generated) and a bundle exported once from the embedded default model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip(
    "bpy", reason="bpy (Blender as a Python module) is not installed: pip install bpy==5.0.1 "
    "(Python 3.11) to run the Blender scene tests")

from hmu_core.motion.motion import Motion  # noqa: E402
from hmu_core.synth.families import ClipPlan, Segment  # noqa: E402
from hmu_core.synth.generate import generate_clip  # noqa: E402

Y_UP_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Our rig's object rotation (+90° about X): SMPL Y-up positions -> Blender Z-up world."""


def _world(joints: np.ndarray) -> np.ndarray:
    return np.asarray(joints, dtype=np.float64) @ Y_UP_TO_WORLD.T


@pytest.fixture(scope="session")
def world():
    """(..., 3) Y-up positions -> Blender world positions of our upright rig (a function)."""
    return _world


@pytest.fixture(autouse=True)
def empty_scene():
    """A factory-fresh empty file at 20 fps for every test (nothing leaks between tests)."""
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0
    return scene


@pytest.fixture(scope="session")
def walk_motion() -> Motion:
    """A synthetic 3 s walk that turns left, with a 1.1x body (not the rig's default size)."""
    plan = ClipPlan("scene", (Segment("walk", 0, 61, {"direction": "turn_left",
                                                       "speed": "normal"}),), 1.1, 7)
    return Motion.from_joints(generate_clip(plan).joints, text="a person walks and turns left",
                              provenance={"seed": 7, "unlearning": {"method": "lcr"}})


@pytest.fixture(scope="session")
def generated_motion(default_bundle: Path) -> Motion:
    """A real 2 s motion from the default model through the onnxruntime runtime."""
    from exporter.runtime import Generator

    generator = Generator(default_bundle, device="cpu")
    return generator.generate(["a person waves with both hands"], seconds=2.0,
                              seed=3).motions[0]
