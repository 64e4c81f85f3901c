"""The ``Motion`` value type: everything a consumer of one generated or loaded clip needs.

Numpy only. Arrays are copied on construction and made read-only, so a ``Motion`` is a value:
``dataclasses.replace`` (or :meth:`Motion.with_smpl`) makes a changed copy.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hmu_core.errors import MotionError
from hmu_core.motion.skeleton import FEATURE_DIM, FPS, NUM_JOINTS
from hmu_core.motion.smpl import SMPLPose, inverse_kinematics


def _frozen(array: np.ndarray, dtype: type) -> np.ndarray:
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Motion:
    """One motion clip.

    Attributes:
        joints: (T, 22, 3) float32 joint positions, HumanML3D/SMPL joint order, metres, Y-up.
        fps: frames per second (> 0); HumanML3D is 20.
        features: optional (T, 263) float32 HumanML3D features (not normalised) of the same
            frames, when the clip came from a model.
        smpl: optional SMPL-topology pose (IK of the joints); :meth:`smpl_pose` computes it on
            demand (and caches it), :meth:`with_smpl` returns a copy that carries it.
        text: the prompt or caption.
        provenance: free-form, JSON-serialisable facts (model, seed, bundle hash, unlearning
            record, ...).
    """

    joints: np.ndarray
    fps: float = float(FPS)
    features: np.ndarray | None = None
    smpl: SMPLPose | None = None
    text: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    _smpl_cache: list = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        joints = np.asarray(self.joints)
        if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
            raise MotionError(f"Motion.joints must be (T, 22, 3), got shape {joints.shape}")
        if joints.shape[0] < 1:
            raise MotionError("Motion.joints must have at least one frame")
        if not np.issubdtype(joints.dtype, np.number):
            raise MotionError(f"Motion.joints must be numeric, got dtype {joints.dtype}")
        if not np.all(np.isfinite(joints)):
            bad = np.argwhere(~np.isfinite(joints))[0]
            raise MotionError(f"Motion.joints has a NaN/inf value (first at frame {bad[0]})")
        object.__setattr__(self, "joints", _frozen(joints, np.float32))

        try:
            fps = float(self.fps)
        except (TypeError, ValueError) as exc:
            raise MotionError(f"Motion.fps must be a number, got {self.fps!r}") from exc
        if not math.isfinite(fps) or fps <= 0:
            raise MotionError(f"Motion.fps must be a finite number > 0, got {fps}")
        object.__setattr__(self, "fps", fps)

        if self.features is not None:
            feats = np.asarray(self.features)
            if feats.ndim != 2 or feats.shape[1] != FEATURE_DIM:
                raise MotionError(f"Motion.features must be (T, 263), got shape {feats.shape}")
            if feats.shape[0] != joints.shape[0]:
                raise MotionError(
                    f"Motion.features has {feats.shape[0]} frames but joints have "
                    f"{joints.shape[0]}; they must describe the same frames"
                )
            if not np.all(np.isfinite(feats)):
                raise MotionError("Motion.features contains NaN or infinite values")
            object.__setattr__(self, "features", _frozen(feats, np.float32))

        if self.smpl is not None:
            if not isinstance(self.smpl, SMPLPose):
                raise MotionError(
                    f"Motion.smpl must be an SMPLPose, got {type(self.smpl).__name__}"
                )
            if self.smpl.num_frames != joints.shape[0]:
                raise MotionError(
                    f"Motion.smpl has {self.smpl.num_frames} frames but joints have "
                    f"{joints.shape[0]}"
                )
        if not isinstance(self.text, str):
            raise MotionError(f"Motion.text must be a str, got {type(self.text).__name__}")
        if not isinstance(self.provenance, dict):
            raise MotionError(
                f"Motion.provenance must be a dict, got {type(self.provenance).__name__}"
            )
        object.__setattr__(self, "provenance", dict(self.provenance))

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def from_features(
        cls,
        features: np.ndarray,
        text: str = "",
        fps: float = FPS,
        provenance: dict[str, Any] | None = None,
    ) -> Motion:
        """A motion from (T, 263) HumanML3D features (not normalised); joints by
        ``features_to_joints`` (the official ``recover_from_ric``)."""
        from hmu_core.motion.features import features_to_joints

        feats = np.asarray(features)
        if feats.ndim != 2 or feats.shape[-1] != FEATURE_DIM:
            raise MotionError(f"features must be (T, 263), got shape {feats.shape}")
        if not np.all(np.isfinite(feats)):
            raise MotionError("features contain NaN or infinite values")
        joints = features_to_joints(feats)
        return cls(joints=joints, fps=fps, features=feats, text=text,
                   provenance=dict(provenance or {}))  # fmt: skip

    @classmethod
    def from_joints(
        cls,
        joints: np.ndarray,
        text: str = "",
        fps: float = FPS,
        provenance: dict[str, Any] | None = None,
        smpl: SMPLPose | None = None,
    ) -> Motion:
        """A motion from (T, 22, 3) joint positions (metres, Y-up)."""
        return cls(joints=joints, fps=fps, smpl=smpl, text=text,
                   provenance=dict(provenance or {}))  # fmt: skip

    # -- properties -----------------------------------------------------------------------------

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def duration_seconds(self) -> float:
        """``num_frames / fps`` (each frame lasts 1/fps)."""
        return self.num_frames / self.fps

    def smpl_pose(self) -> SMPLPose:
        """The SMPL pose: ``smpl`` if set, else the IK of the joints (computed once, cached)."""
        if self.smpl is not None:
            return self.smpl
        if not self._smpl_cache:
            self._smpl_cache.append(inverse_kinematics(self.joints))
        return self._smpl_cache[0]

    def with_smpl(self, rest: np.ndarray | None = None) -> Motion:
        """A copy carrying ``smpl`` (IK with ``rest`` offsets (24, 3), or the motion's own)."""
        pose = self.smpl_pose() if rest is None else inverse_kinematics(self.joints, rest)
        return dataclasses.replace(self, smpl=pose)

    def __repr__(self) -> str:
        return (
            f"Motion(num_frames={self.num_frames}, fps={self.fps:g}, "
            f"features={'yes' if self.features is not None else 'no'}, "
            f"smpl={'yes' if self.smpl is not None else 'no'}, text={self.text!r})"
        )
