"""Stick-figure GIF/MP4 rendering (hmu_core.render.stick)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from hmu_core.errors import ConfigError, MotionError
from hmu_core.motion.motion import Motion
from hmu_core.motion.skeleton import TARGET_OFFSETS
from hmu_core.render import stick

HAS_FFMPEG = importlib.util.find_spec("imageio_ffmpeg") is not None


def _motion(frames: int, text: str, step: float = 0.02) -> Motion:
    """A rest skeleton walking along +z (positions from the target offsets)."""
    parents = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
    rest = np.zeros((22, 3))
    for j, p in enumerate(parents):
        if p >= 0:
            rest[j] = rest[p] + TARGET_OFFSETS[j]
    rest[:, 1] += 0.95
    joints = rest[None] + np.arange(frames)[:, None, None] * np.array([0.0, 0.0, step])
    return Motion.from_joints(joints, text=text)


def test_gif_side_by_side(tmp_path):
    out = stick.render_stick([_motion(6, "a"), _motion(4, "b")], tmp_path / "clip.gif",
                             titles=["walk", "short"], panel_inches=2.0, dpi=40)
    data = out.read_bytes()
    assert data[:6] in (b"GIF87a", b"GIF89a") and len(data) > 500
    from PIL import Image

    with Image.open(out) as img:
        assert img.n_frames == 6 and img.size == (160, 80)
        frames = []
        for i in (0, 5):
            img.seek(i)
            frames.append(np.asarray(img.convert("RGB"), dtype=np.int16))
    # the bones move over a scene drawn once, in their chain colours (the palette holds them)
    assert np.abs(frames[0] - frames[1]).max() > 100
    for colour in stick.CHAIN_COLOURS:
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(frames[0] - rgb).sum(-1) < 40).any(), colour
    assert [p.name for p in tmp_path.iterdir()] == ["clip.gif"]  # no temp files left


@pytest.mark.skipif(not HAS_FFMPEG, reason="imageio-ffmpeg (bundled ffmpeg) is not installed")
def test_mp4(tmp_path):
    frames = []
    out = stick.render_stick(_motion(5, "walk"), tmp_path / "clip.mp4", panel_inches=2.0, dpi=40,
                             progress=lambda *report: frames.append(report))
    data = out.read_bytes()
    assert len(data) > 500 and data[4:8] == b"ftyp"
    assert frames == [("rendering", i, 5) for i in range(6)]


def test_bad_requests(tmp_path):
    with pytest.raises(ConfigError, match=r"\.gif or \.mp4"):
        stick.render_stick(_motion(3, "a"), tmp_path / "clip.png")
    with pytest.raises(ConfigError, match="titles"):
        stick.render_stick([_motion(3, "a")], tmp_path / "c.gif", titles=["x", "y"])
    with pytest.raises(MotionError):
        stick.render_stick([], tmp_path / "c.gif")
    slow = Motion.from_joints(_motion(3, "a").joints, fps=10)
    with pytest.raises(MotionError, match="fps"):
        stick.render_stick([_motion(3, "a"), slow], tmp_path / "c.gif")
    assert not list(tmp_path.iterdir())
