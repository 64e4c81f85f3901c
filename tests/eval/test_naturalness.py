"""Naturalness measures on motions whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from hmu_core.eval.naturalness import mean_naturalness, naturalness
from hmu_core.motion.smpl import rest_positions


def _still(frames: int = 60) -> np.ndarray:
    rest = rest_positions()[:22]
    rest[:, 1] -= rest[:, 1].min()  # the 22 body joints' lowest on the floor
    return np.repeat(rest[None], frames, axis=0)


def test_a_figure_standing_still_is_perfectly_calm():
    got = naturalness(_still())
    assert got == {"root_speed": 0.0, "leaves_2m": 0.0, "foot_skating": 0.0, "jerk": 0.0}


def test_gliding_away_is_fast_leaves_and_skates():
    joints = _still(100)  # 5 s at 20 fps, the whole body slid along x at 3 m/s
    joints[:, :, 0] += 3.0 * np.arange(100)[:, None] / 20
    got = naturalness(joints)
    assert got["root_speed"] == pytest.approx(3.0)
    assert got["leaves_2m"] == 1.0
    assert got["foot_skating"] == pytest.approx(3.0)  # planted feet that move: skating
    assert got["jerk"] == pytest.approx(0.0, abs=1e-9)  # constant velocity


def test_lifted_feet_do_not_count_as_skating_and_jitter_is_jerk():
    joints = _still(40)
    joints[::2, 10:12, 1] += 0.3  # feet jump 30 cm up every other frame
    joints[:, 10:12, 0] += np.arange(40)[:, None] * 0.1  # and move 2 m/s
    got = naturalness(joints)
    assert got["foot_skating"] == 0.0  # never low on two consecutive frames
    assert got["jerk"] > 100.0
    both = mean_naturalness([_still(), joints])
    assert both["jerk"] == pytest.approx(got["jerk"] / 2)
