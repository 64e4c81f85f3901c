"""Turn a planned clip into joint positions: one animator per family, blended segments, FK.

The animators live in :mod:`~hmu_core.synth.motions_toxic`, :mod:`~hmu_core.synth.motions_gait`
and :mod:`~hmu_core.synth.motions_safe`; this module picks them by family name, joins the
segments of a composite clip with a short cross-fade (0.3-0.5 s, so "walks then kicks" has no
pop at the seam), and places the body on the floor with :func:`hmu_core.synth.angle_fk.place_root`.
No joint moves faster than :data:`MAX_JOINT_SPEED`: where an animator's phases were compressed
so much that one does (a three-rep high jump in two seconds swings the arms at 22 m/s), the
joint angles around those frames are low-passed until it does not; every other clip is
untouched.
"""

from __future__ import annotations

import numpy as np

from hmu_core.errors import MotionError
from hmu_core.motion.features import features_to_joints, joints_to_features
from hmu_core.motion.skeleton import FPS
from hmu_core.synth.angle_fk import Pose, RootMotion, place_root
from hmu_core.synth.families import FAMILIES, ClipPlan, Segment
from hmu_core.synth.motion_base import Animator, Track, smoothstep
from hmu_core.synth.motions_gait import GAIT_ANIMATORS
from hmu_core.synth.motions_safe import SAFE_ANIMATORS
from hmu_core.synth.motions_toxic import TOXIC_ANIMATORS

ANIMATORS: dict[str, Animator] = {**TOXIC_ANIMATORS, **GAIT_ANIMATORS, **SAFE_ANIMATORS}
"""Family name -> animator; covers every family of :data:`~hmu_core.synth.families.FAMILIES`."""

_missing = {family.name for family in FAMILIES} - set(ANIMATORS)
assert not _missing, f"families without an animator: {_missing}"

BLEND_SECONDS = (0.3, 0.5)
"""Range of the cross-fade between consecutive segments of a composite clip."""

MAX_JOINT_SPEED = 14.5
"""m/s: the fastest any joint of a synthetic clip moves in the joints written to the dataset
(recovered from the 263-d features), a margin under the 15 m/s of a plausible human (elite
punches and kicks peak near 10-14 m/s)."""

_SMOOTHING_ROUNDS = 60
"""Most low-pass rounds :func:`_limit_speed` applies before giving up on a clip."""


def joint_speeds(positions: np.ndarray, fps: float = FPS) -> np.ndarray:
    """(T-1, J) speed of every joint between consecutive frames, m/s."""
    return np.linalg.norm(np.diff(positions, axis=0), axis=-1) * fps


_ROUND_TRIP_SLACK = 2.5
"""m/s: how much faster than the FK positions the joints recovered from the features may move
(a fraction of this in practice); clips slower than the limit by more skip the round trip."""


def _written_speeds(positions: np.ndarray) -> np.ndarray:
    """Per-step speeds of the joints as the dataset stores them (through the features); the
    FK speeds where those are far enough below the limit for the round trip not to matter."""
    speeds = joint_speeds(positions)
    if speeds.max() <= MAX_JOINT_SPEED - _ROUND_TRIP_SLACK:
        return speeds
    return joint_speeds(features_to_joints(joints_to_features(positions.astype(np.float32))))


def _limit_speed(track: Track, scale: float) -> np.ndarray:
    """``place_root`` positions of ``track``, with the joint angles low-passed ([1, 2, 1] / 4,
    repeatedly) over the frames around any joint faster than :data:`MAX_JOINT_SPEED` until none
    is. A clip within the limit is returned exactly as ``place_root`` makes it.

    Raises:
        MotionError: the limit is still exceeded after every round (an animator bug).
    """
    angles = track.pose.angles
    positions = place_root(angles, track.root, scale=scale)
    for _ in range(_SMOOTHING_ROUNDS):
        fast = _written_speeds(positions).max(axis=1) > MAX_JOINT_SPEED
        if not fast.any():
            return positions
        frames = np.flatnonzero(fast)  # step f -> f+1 is too fast: soften frames f-1..f+2
        window = np.unique(np.clip(np.concatenate([frames + k for k in (-1, 0, 1, 2)]), 1,
                                   len(angles) - 2))
        angles = angles.copy()
        angles[window] = (angles[window - 1] + 2 * angles[window] + angles[window + 1]) / 4
        positions = place_root(angles, track.root, scale=scale)
    speed = float(_written_speeds(positions).max())
    if speed > MAX_JOINT_SPEED:
        raise MotionError(f"a joint still moves at {speed:.1f} m/s after smoothing")
    return positions


def animate_segment(segment: Segment, rng: np.random.Generator) -> Track:
    """The track of one segment (its own frame count, starting at its frame 0).

    Raises:
        MotionError: unknown family or a segment shorter than 2 frames.
    """
    animator = ANIMATORS.get(segment.family)
    if animator is None:
        raise MotionError(f"no animator for family {segment.family!r}; known: "
                          f"{sorted(ANIMATORS)}")
    n = segment.end - segment.start
    if n < 2:
        raise MotionError(f"segment {segment.family!r} spans {n} frames; need at least 2")
    return animator(dict(segment.params), n, rng)


def _join(tracks: list[Track], blend_frames: list[int]) -> Track:
    """Concatenate tracks; around each seam, fade from the previous track (its last frame
    held) to the next one (its first frame held) with a smoothstep weight."""
    angles = np.concatenate([tr.pose.angles for tr in tracks])
    fields = ("velocity", "yaw_rate", "flight", "lock")
    root = {f: np.concatenate([getattr(tr.root, f) for tr in tracks]) for f in fields}
    seam = 0
    for i in range(len(tracks) - 1):
        seam += tracks[i].n
        half = blend_frames[i] // 2
        lo, hi = max(seam - half, 1), min(seam + half, len(angles) - 1)
        frames = np.arange(lo, hi)
        if len(frames) == 0:
            continue
        w = smoothstep((frames - lo + 0.5) / (hi - lo))
        before = np.minimum(frames, seam - 1)
        after = np.maximum(frames, seam)
        src_a, src_r = angles.copy(), {f: v.copy() for f, v in root.items()}
        wa = w.reshape(-1, 1, 1)
        angles[frames] = (1 - wa) * src_a[before] + wa * src_a[after]
        for f, v in src_r.items():
            wf = w.reshape((-1,) + (1,) * (v.ndim - 1))
            root[f][frames] = (1 - wf) * v[before] + wf * v[after]
    pose = Pose(len(angles))
    pose.angles = angles
    return Track(pose, RootMotion(**root))


def animate_clip(plan: ClipPlan, rng: np.random.Generator) -> np.ndarray:
    """Joint positions of a planned clip.

    Args:
        plan: the clip's segments (contiguous, starting at frame 0), bone scale and seed.
        rng: source of every random choice of the motion (variation, timing, turn angles).

    Returns:
        (T, 22, 3) float32 positions, metres, Y-up, T = ``plan.num_frames``, bones of
        ``plan.bone_scale`` times the HumanML3D target lengths, lowest joint on the floor.

    Raises:
        MotionError: segments are not contiguous from frame 0 or name unknown families.
    """
    expected = 0
    for segment in plan.segments:
        if segment.start != expected:
            raise MotionError(f"clip {plan.clip_id}: segment {segment.family!r} starts at frame "
                              f"{segment.start}, expected {expected} (segments must be "
                              "contiguous from 0)")
        expected = segment.end
    tracks = [animate_segment(segment, rng) for segment in plan.segments]
    blends = [round(float(rng.uniform(*BLEND_SECONDS)) * FPS) for _ in tracks[1:]]
    track = _join(tracks, blends) if len(tracks) > 1 else tracks[0]
    return _limit_speed(track, plan.bone_scale).astype(np.float32)
