"""Turn a planned clip into joint positions: one animator per family, blended segments, FK.

The animators live in :mod:`~hmu_core.synth.motions_toxic`, :mod:`~hmu_core.synth.motions_gait`
and :mod:`~hmu_core.synth.motions_safe`; this module picks them by family name, joins the
segments of a composite clip with a short cross-fade (0.3-0.5 s, so "walks then kicks" has no
pop at the seam), and places the body on the floor with :func:`hmu_core.synth.rig.place_root`.
"""

from __future__ import annotations

import numpy as np

from hmu_core.errors import MotionError
from hmu_core.motion.skeleton import FPS
from hmu_core.synth.families import FAMILIES, ClipPlan, Segment
from hmu_core.synth.motion_base import Animator, Track, smoothstep
from hmu_core.synth.motions_gait import GAIT_ANIMATORS
from hmu_core.synth.motions_safe import SAFE_ANIMATORS
from hmu_core.synth.motions_toxic import TOXIC_ANIMATORS
from hmu_core.synth.rig import Pose, RootMotion, place_root

ANIMATORS: dict[str, Animator] = {**TOXIC_ANIMATORS, **GAIT_ANIMATORS, **SAFE_ANIMATORS}
"""Family name -> animator; covers every family of :data:`~hmu_core.synth.families.FAMILIES`."""

_missing = {family.name for family in FAMILIES} - set(ANIMATORS)
assert not _missing, f"families without an animator: {_missing}"

BLEND_SECONDS = (0.3, 0.5)
"""Range of the cross-fade between consecutive segments of a composite clip."""


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
    positions = place_root(track.pose.angles, track.root, scale=plan.bone_scale)
    return positions.astype(np.float32)
