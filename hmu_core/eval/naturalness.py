"""Does a generated motion look like a person doing something in place, or like running away?

What LCR puts in place of a punch matters as much as removing the punch: the official safe code
of the embedded model is a running code, so unlearned forget outputs leave the frame at 2+ m/s.
These measures make that visible, from joint positions alone (Y-up metres, HumanML3D order):

- root speed: mean horizontal speed of the pelvis (m/s);
- leaves 2 m: whether the pelvis ever gets more than 2 m (horizontally) from where it started;
- foot skating: mean horizontal speed (m/s) of a foot joint while it is in contact, contact
  meaning within 5 cm of the clip's lowest foot height on two consecutive frames (a planted
  foot is low; a low foot that slides is exactly what skating is);
- jerk: mean magnitude of the third time derivative of every joint (m/s^3), high for jittery
  or snapping motion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hmu_core.motion.skeleton import FPS

FOOT_JOINTS = (10, 11)  # left_foot, right_foot
CONTACT_HEIGHT = 0.05  # m above the clip's lowest foot height
LEAVE_RADIUS = 2.0  # m
MEASURES = ("root_speed", "leaves_2m", "foot_skating", "jerk")


def naturalness(joints: np.ndarray, fps: float = FPS) -> dict[str, float]:
    """The four measures of one ``(T, 22, 3)`` motion (see the module docstring)."""
    joints = np.asarray(joints, dtype=np.float64)
    root = joints[:, 0, [0, 2]]
    step = np.linalg.norm(np.diff(root, axis=0), axis=1) * fps
    away = np.linalg.norm(root - root[:1], axis=1)
    feet = joints[:, FOOT_JOINTS, :]
    low = feet[..., 1] <= feet[..., 1].min() + CONTACT_HEIGHT  # (T, 2)
    slide = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1) * fps  # (T-1, 2)
    contact = low[1:] & low[:-1]
    jerk = np.diff(joints, n=3, axis=0) * fps ** 3
    return {"root_speed": float(step.mean()) if step.size else 0.0,
            "leaves_2m": float(away.max() > LEAVE_RADIUS),
            "foot_skating": float(slide[contact].mean()) if contact.any() else 0.0,
            "jerk": float(np.linalg.norm(jerk, axis=-1).mean()) if jerk.size else 0.0}


def mean_naturalness(motions: Sequence[np.ndarray], fps: float = FPS) -> dict[str, float]:
    """Each measure averaged over motions (``leaves_2m`` becomes the share that leave)."""
    rows = [naturalness(j, fps) for j in motions]
    return {k: float(np.mean([r[k] for r in rows])) for k in MEASURES}
