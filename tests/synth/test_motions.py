"""Family animators: plausible, finite, and their parameters really change the movement."""

from __future__ import annotations

import numpy as np
import pytest

from hmu_core.errors import MotionError
from hmu_core.motion.skeleton import PARENTS
from hmu_core.synth.angle_fk import RIG_OFFSETS
from hmu_core.synth.families import FAMILIES, FAMILY_BY_NAME, ClipPlan, Segment
from hmu_core.synth.motions import ANIMATORS, animate_clip

RIG_LENGTHS = np.linalg.norm(RIG_OFFSETS, axis=1)
L_WRIST, R_WRIST, L_FOOT, R_FOOT, L_KNEE, R_KNEE, HEAD = 20, 21, 10, 11, 4, 5, 15


def animate(family: str, seed: int = 0, seconds: float = 4.0, scale: float = 1.0,
            **params) -> np.ndarray:
    """(T, 22, 3) joints of a one-segment clip; unspecified parameters take their first value."""
    spec = FAMILY_BY_NAME[family]
    full = {k: params.get(k, values[0]) for k, values in spec.params.items()}
    n = int(seconds * 20)
    plan = ClipPlan("test", (Segment(family, 0, n, full),), scale, seed)
    return animate_clip(plan, np.random.default_rng(seed))


def test_every_family_has_an_animator():
    assert set(ANIMATORS) == {f.name for f in FAMILIES}


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_every_family_is_finite_rigid_and_on_the_floor(family):
    rng = np.random.default_rng(7)
    spec = FAMILY_BY_NAME[family]
    for k in range(3):
        params = spec.sample_params(rng)
        n = int(rng.uniform(*spec.seconds) * 20)
        scale = float(rng.uniform(0.95, 1.05))
        pos = animate_clip(ClipPlan("x", (Segment(family, 0, n, params),), scale, k),
                           np.random.default_rng(k))
        assert pos.shape == (n, 22, 3) and pos.dtype == np.float32
        assert np.all(np.isfinite(pos))
        bones = np.linalg.norm(pos[:, 1:] - pos[:, list(PARENTS[1:])], axis=-1)
        np.testing.assert_allclose(bones, np.broadcast_to(scale * RIG_LENGTHS[1:], bones.shape),
                                   atol=2e-5)
        assert pos[:, :, 1].min() > -1e-5  # no joint below the floor
        feet = pos[:, [7, 8, 10, 11], 1].min(axis=1)
        np.testing.assert_allclose(feet, pos[:, :, 1].min(axis=1), atol=1e-5)  # feet lowest
        assert (feet < 1e-5).mean() > 0.5  # on the floor; jumps and runs fly part of the time
        # No teleporting: joints move less than 0.7 m per frame (14 m/s).
        assert np.linalg.norm(np.diff(pos, axis=0), axis=-1).max() < 0.7


def _reach_height(pos: np.ndarray, joint: int) -> float:
    return float(pos[:, joint, 1].max())


def test_kick_raises_the_kicking_foot_and_height_matters():
    right = animate("kick", side="right", height="high")
    left = animate("kick", side="left", height="high")
    assert _reach_height(right, R_FOOT) > _reach_height(right, L_FOOT) + 0.5
    assert _reach_height(left, L_FOOT) > _reach_height(left, R_FOOT) + 0.5
    low = animate("kick", side="right", height="low")
    assert _reach_height(right, R_FOOT) > _reach_height(low, R_FOOT) + 0.4


def _forward_reach(pos: np.ndarray, joint: int) -> float:
    """Largest distance of ``joint`` in front of the pelvis (body faces +z, no turning)."""
    return float((pos[:, joint, 2] - pos[:, 0, 2]).max())


def test_punch_extends_the_punching_wrist_forward():
    left = animate("punch", side="left", style="straight")
    assert _forward_reach(left, L_WRIST) > _forward_reach(left, R_WRIST) + 0.15
    right = animate("punch", side="right", style="straight")
    assert _forward_reach(right, R_WRIST) > _forward_reach(right, L_WRIST) + 0.15
    hook = animate("punch", side="right", style="hook")
    # A hook swings across the body: the right wrist passes the midline to the left (+x).
    assert (hook[:, R_WRIST, 0] - hook[:, 0, 0]).max() > 0.0


def test_reps_and_speed_change_the_timing():
    def strikes(pos: np.ndarray, joint: int) -> int:
        reach = pos[:, joint, 2] - pos[:, 0, 2]
        high = reach > reach.min() + 0.6 * np.ptp(reach)
        return int(np.sum(high[1:] & ~high[:-1]))

    assert strikes(animate("punch", side="left", reps=1, seconds=5), L_WRIST) == 1
    assert strikes(animate("punch", side="left", reps=3, seconds=5), L_WRIST) == 3
    slow = animate("kick", side="right", speed="slow", height="high", seconds=5)
    fast = animate("kick", side="right", speed="fast", height="high", seconds=5)
    above = lambda p: int((p[:, R_FOOT, 1] > 0.5).sum())  # noqa: E731
    assert above(slow) > above(fast)


def test_toxic_families_move_their_characteristic_joint():
    up = animate("uppercut", side="left")
    assert _reach_height(up, L_WRIST) > _reach_height(up, R_WRIST) + 0.1
    over = animate("overhead_strike", side="right")
    assert _reach_height(over, R_WRIST) > over[:, HEAD, 1].max()  # the hand goes above the head
    stab = animate("stab", side="right", style="stab")
    assert _forward_reach(stab, R_WRIST) > _forward_reach(stab, L_WRIST) + 0.1
    shoot = animate("shoot", side="left", grip="one_hand")
    aim = shoot[:, L_WRIST, 2] - shoot[:, 0, 2]
    assert aim.max() > 0.45 and _forward_reach(shoot, R_WRIST) < 0.3
    knee = animate("knee_elbow_strike", side="right", limb="knee")
    assert _reach_height(knee, R_KNEE) > _reach_height(knee, L_KNEE) + 0.3


def _heading_change(pos: np.ndarray) -> float:
    """Yaw from the first to the last frame (radians, positive = turned left)."""
    def heading(frame: np.ndarray) -> float:
        across = frame[2] - frame[1]  # left hip -> right hip
        forward = np.cross([0.0, 1.0, 0.0], across)
        return float(np.arctan2(forward[0], forward[2]))

    return (heading(pos[-1]) - heading(pos[0]) + np.pi) % (2 * np.pi) - np.pi


def test_walk_direction_and_speed():
    fwd = animate("walk", direction="forward", speed="normal", seconds=6)
    back = animate("walk", direction="backward", speed="normal", seconds=6)
    assert fwd[-1, 0, 2] - fwd[0, 0, 2] > 3.0
    assert back[-1, 0, 2] - back[0, 0, 2] < -1.0
    slow = animate("walk", direction="forward", speed="slow", seconds=6)
    fast = animate("walk", direction="forward", speed="fast", seconds=6)
    assert fast[-1, 0, 2] - fast[0, 0, 2] > slow[-1, 0, 2] - slow[0, 0, 2] + 1.0
    assert _heading_change(animate("walk", direction="turn_left", seconds=6)) > 0.8
    assert _heading_change(animate("walk", direction="turn_right", seconds=6)) < -0.8
    run = animate("run", pace="run", direction="forward", seconds=6)
    assert run[-1, 0, 2] - run[0, 0, 2] > 2.0 * (fwd[-1, 0, 2] - fwd[0, 0, 2])


def test_gait_alternates_the_legs():
    pos = animate("march", reps=6, seconds=6)
    left_up = pos[:, L_KNEE, 1] > pos[:, R_KNEE, 1] + 0.15
    right_up = pos[:, R_KNEE, 1] > pos[:, L_KNEE, 1] + 0.15
    rises = lambda m: int(np.sum(m[1:] & ~m[:-1]))  # noqa: E731
    assert rises(left_up) == 3 and rises(right_up) == 3
    assert np.abs(pos[-1, 0, [0, 2]] - pos[0, 0, [0, 2]]).max() < 0.3  # in place


def test_safe_families_move_their_characteristic_joint():
    jump = animate("jump", height="high", style="in_place", reps=1)
    assert jump[:, [7, 8, 10, 11], 1].min(axis=1).max() > 0.2  # both feet leave the floor
    wave = animate("wave", side="right")
    assert _reach_height(wave, R_WRIST) > _reach_height(wave, L_WRIST) + 0.5
    clap = animate("clap", position="chest")
    gap = np.linalg.norm(clap[:, L_WRIST] - clap[:, R_WRIST], axis=-1)
    assert gap.min() < 0.15 < gap[0]
    squat = animate("squat", depth="deep")
    assert squat[:, 0, 1].min() < squat[0, 0, 1] - 0.25
    sit = animate("sit_stand", variant="sit_down", seconds=5)
    assert sit[-1, 0, 1] < sit[0, 0, 1] - 0.3
    bow = animate("bow", depth="deep")
    assert bow[:, HEAD, 1].min() < bow[0, HEAD, 1] - 0.3
    arms = animate("raise_arms", variant="both_up")
    assert min(_reach_height(arms, L_WRIST), _reach_height(arms, R_WRIST)) > arms[0, HEAD, 1]
    left = animate("sidestep", side="left", steps=3)
    right = animate("sidestep", side="right", steps=3)
    assert left[-1, 0, 0] - left[0, 0, 0] > 0.3 > -0.3 > right[-1, 0, 0] - right[0, 0, 0]
    sway = animate("dance", style="sway", seconds=6)
    assert np.ptp(sway[:, HEAD, 0] - sway[:, 7, 0]) > 0.1


def test_same_seed_same_motion_and_variation_between_seeds():
    a = animate("punch", seed=3, side="left")
    np.testing.assert_array_equal(a, animate("punch", seed=3, side="left"))
    b = animate("punch", seed=4, side="left")
    assert np.abs(a - b).max() > 0.01


def test_composite_clips_blend_without_jumps():
    segments = (Segment("walk", 0, 80, {"direction": "forward", "speed": "normal"}),
                Segment("kick", 80, 160, {"side": "right", "height": "high", "reps": 1,
                                          "speed": "normal"}))
    pos = animate_clip(ClipPlan("c", segments, 1.0, 0), np.random.default_rng(0))
    assert pos.shape == (160, 22, 3)
    local = pos - pos[:, :1]
    step = np.linalg.norm(np.diff(local, axis=0), axis=-1).max(axis=1)
    assert step[70:90].max() < 0.2  # no pop at the seam (frame 80)
    assert pos[79, 0, 2] - pos[0, 0, 2] > 1.0  # walked first
    assert pos[80:, R_FOOT, 1].max() > 0.8  # then kicked


def test_bad_segments_raise():
    gap = (Segment("walk", 0, 40, {"direction": "forward", "speed": "slow"}),
           Segment("wave", 50, 90, {"side": "left", "reps": 2, "speed": "slow"}))
    with pytest.raises(MotionError, match="contiguous"):
        animate_clip(ClipPlan("g", gap, 1.0, 0), np.random.default_rng(0))
    with pytest.raises(MotionError, match="no animator"):
        animate_clip(ClipPlan("u", (Segment("fly", 0, 40, {}),), 1.0, 0),
                     np.random.default_rng(0))
