"""The synthetic set stays physically plausible: no joint moves faster than 15 m/s, and the
limiter that ensures it changes only the clips that needed it."""

from __future__ import annotations

import numpy as np
import pytest

from hmu_core.data.humanml3d import HumanML3D
from hmu_core.synth.angle_fk import RIGHT, Pose, RootMotion, place_root
from hmu_core.synth.generate import generate_clip
from hmu_core.synth.motion_base import Track, times
from hmu_core.synth.motions import MAX_JOINT_SPEED, _limit_speed, joint_speeds
from hmu_core.synth.plan import plan_dataset

HUMAN_LIMIT = 15.0
"""m/s: faster than any joint of a real person (elite punches and kicks peak near 14)."""


@pytest.fixture(scope="module")
def tiny_seed3():
    """Every clip of ``hmu data synth --size tiny --seed 3`` (the set the issue measured)."""
    plan = plan_dataset("tiny", 3)
    return {clip.clip_id: (clip, generate_clip(clip)) for clip in plan.clips}


def test_no_joint_of_the_tiny_set_is_faster_than_15_m_s(tiny_seed3):
    speeds = {cid: float(joint_speeds(data.joints).max()) for cid, (_, data) in
              tiny_seed3.items()}
    fastest = max(speeds, key=speeds.get)
    assert speeds[fastest] <= HUMAN_LIMIT, (fastest, speeds[fastest])
    assert speeds[fastest] > 10.0  # fast motions (runs, kicks) remain fast
    # The families still move as before: runs faster than walks, walks faster than bows.
    by_family: dict[str, float] = {}
    for cid, (clip, _) in tiny_seed3.items():
        if len(clip.segments) == 1:
            family = clip.segments[0].family
            by_family[family] = max(by_family.get(family, 0.0), speeds[cid])
    assert by_family["run"] > by_family["walk"] > by_family["bow"]


def test_the_jump_the_issue_found_is_still_a_jump(tiny_seed3):
    """Clip 000185 (run, then three high jumps) swung an arm at 22 m/s; it stays a run into
    jumps, with flight and the arms raised overhead, below the limit."""
    clip, data = tiny_seed3["000185"]
    assert [s.family for s in clip.segments] == ["run", "jump"]
    joints = data.joints
    assert joint_speeds(joints).max() <= HUMAN_LIMIT
    jump = slice(clip.segments[1].start, clip.segments[1].end - 1)
    pelvis = joints[jump, 0, 1]
    assert pelvis.max() - np.median(pelvis) > 0.08  # airborne (0.11 m, as before the limit)
    head = joints[jump, 15, 1]
    wrists = joints[jump][:, [20, 21], 1]
    assert (wrists.max(axis=1) > head).any()  # arms swung above the head


def test_written_datasets_stay_under_the_limit(synth_balanced):
    """The 380-clip, 40 % toxic set as read back from disk (every family, kicks and strikes)."""
    root, _ = synth_balanced
    data = HumanML3D(root)
    fastest = max(float(joint_speeds(data.joints(i)).max()) for i in data.ids("all"))
    assert fastest <= HUMAN_LIMIT


def _track(n: int, pop_frame: int | None) -> Track:
    """A standing body whose right shoulder swings slowly, optionally with a 120° pop."""
    pose = Pose(n)
    t = times(n)
    pose.shoulder(RIGHT, flex=0.6 * np.sin(2 * np.pi * 0.5 * t))
    if pop_frame is not None:
        pose.shoulder(RIGHT, flex=np.where(np.arange(n) >= pop_frame, 2.1, 0.0))
    return Track(pose, RootMotion.still(n))


def test_a_clip_within_the_limit_is_untouched():
    track = _track(60, None)
    expected = place_root(track.pose.angles, track.root)
    np.testing.assert_array_equal(_limit_speed(track, 1.0), expected)


def test_a_pop_is_smoothed_locally_below_the_limit():
    track = _track(60, 30)
    raw = place_root(track.pose.angles, track.root)
    assert joint_speeds(raw).max() > 17.0
    limited = _limit_speed(track, 1.0)
    assert joint_speeds(limited).max() <= MAX_JOINT_SPEED
    moved = np.flatnonzero(np.abs(limited - raw).max(axis=(1, 2)) > 1e-9)
    assert moved.min() >= 30 - 12 and moved.max() <= 30 + 12  # near the pop only
    # The pose before and after still matches: the arm ends raised as it was.
    np.testing.assert_allclose(limited[[0, -1]], raw[[0, -1]], atol=1e-9)
