"""A user's armature as the retargeting maths sees it: its rest pose and object transform.

Plain numpy, no bpy: the Blender side reads these arrays off an armature
(``exporter.scene.retarget``), tests build them in each convention (Mixamo, Rigify, UE5).

Conventions are Blender's: a bone's rest frame has its Y axis along the bone (head to tail)
and its roll about that axis (:func:`bone_rest_matrix`, Blender's ``vec_roll_to_mat3``);
heads, tails and frames are in armature space, in the rig's own units; the object's
``matrix_world`` (rotation, one uniform scale, translation) places the armature in the
Z-up world, in metres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hmu_core.errors import ConfigError

__all__ = ["RigRest", "bone_rest_matrix"]

SCALE_TOLERANCE = 1e-4
"""Relative spread of the object's axis scales still counted as one uniform scale."""


def _axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    x, y, z = axis
    c, s = np.cos(angle), np.sin(angle)
    t = 1.0 - c
    return np.array([[t * x * x + c, t * x * y - s * z, t * x * z + s * y],
                     [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
                     [t * x * z - s * y, t * y * z + s * x, t * z * z + c]])  # fmt: skip


def bone_rest_matrix(head: Sequence[float], tail: Sequence[float], roll: float) -> np.ndarray:
    """(3, 3) rest frame of a bone, as Blender's ``vec_roll_to_mat3`` builds ``matrix_local``.

    The Y column is the unit bone direction; with roll 0 the frame is the smallest rotation
    taking +Y onto the bone (Blender's convention), then it turns by ``roll`` about the bone.
    """
    nor = np.asarray(tail, dtype=np.float64) - np.asarray(head, dtype=np.float64)
    length = np.linalg.norm(nor)
    if not np.isfinite(length) or length < 1e-9:
        raise ConfigError(f"a bone from {list(head)} to {list(tail)} has no length")
    x, y, z = nor / length
    theta = 1.0 + y
    theta_alt = x * x + z * z
    if theta > 1e-5 or theta_alt > 1e-9:
        if theta <= 1e-5:  # near -Y: theta from x and z, as Blender does
            theta = theta_alt * 0.5 + theta_alt * theta_alt * 0.125
        b = np.array([[1.0 - x * x / theta, x, -x * z / theta],
                      [-x, y, -z],
                      [-x * z / theta, z, 1.0 - z * z / theta]])  # fmt: skip
    else:  # pointing along -Y: a half turn about Z
        b = np.diag([-1.0, -1.0, 1.0])
    return _axis_angle_matrix(np.array([x, y, z]), float(roll)) @ b


@dataclass(frozen=True, eq=False)
class RigRest:
    """An armature's rest pose.

    Attributes:
        names: (N,) bone names.
        parents: (N,) parent index of each bone, -1 for a root; parents come first.
        heads, tails: (N, 3) rest heads and tails, armature space, rig units.
        rest_rotations: (N, 3, 3) rest frames (Blender's ``bone.matrix_local`` 3x3).
        matrix_world: (4, 4) the armature object's transform (one uniform scale).
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    heads: np.ndarray
    tails: np.ndarray
    rest_rotations: np.ndarray
    matrix_world: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.names)
        object.__setattr__(self, "names", tuple(str(x) for x in self.names))
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
        if len(set(self.names)) != n:
            raise ConfigError("the armature has two bones with the same name")
        if len(self.parents) != n or any(not -1 <= p < i for i, p in enumerate(self.parents)):
            raise ConfigError("bone parents must be -1 or an earlier bone's index, one per bone")
        for name, shape in (("heads", (n, 3)), ("tails", (n, 3)), ("rest_rotations", (n, 3, 3)),
                            ("matrix_world", (4, 4))):
            arr = np.array(getattr(self, name), dtype=np.float64)
            if arr.shape != shape or not np.all(np.isfinite(arr)):
                raise ConfigError(f"RigRest.{name} must be {shape} finite numbers, "
                                  f"got {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        scales = np.linalg.norm(self.matrix_world[:3, :3], axis=0)
        if scales.min() <= 0 or np.ptp(scales) > SCALE_TOLERANCE * scales.max():
            raise ConfigError(f"the armature object has a non-uniform scale {scales.round(4)}; "
                              "apply its scale (Ctrl+A) first")
        if np.linalg.det(self.matrix_world[:3, :3]) < 0:
            raise ConfigError("the armature object is mirrored (negative scale); apply its "
                              "scale (Ctrl+A) first")

    @classmethod
    def from_rolls(cls, names: Sequence[str], parents: Sequence[int], heads: np.ndarray,
                   tails: np.ndarray, rolls: Sequence[float] | None = None,
                   matrix_world: np.ndarray | None = None) -> RigRest:
        """A rest pose from heads, tails and rolls (radians, default 0), as in edit mode."""
        heads = np.asarray(heads, dtype=np.float64)
        tails = np.asarray(tails, dtype=np.float64)
        rolls = np.zeros(len(names)) if rolls is None else np.asarray(rolls, dtype=np.float64)
        if heads.shape != tails.shape or len(rolls) != len(heads):
            raise ConfigError("heads, tails and rolls must describe the same bones")
        frames = np.stack([bone_rest_matrix(h, t, r) for h, t, r in zip(heads, tails, rolls,
                                                                         strict=True)])
        return cls(tuple(names), tuple(parents), heads, tails, frames,
                   np.eye(4) if matrix_world is None else matrix_world)

    @property
    def scale(self) -> float:
        """The object's uniform scale (world metres per rig unit)."""
        return float(np.linalg.norm(self.matrix_world[:3, 0]))

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) the object's rotation."""
        return self.matrix_world[:3, :3] / self.scale

    def index(self, name: str) -> int:
        return self.names.index(name)

    def world_heads(self) -> np.ndarray:
        """(N, 3) rest heads in the world (metres)."""
        return self.heads @ self.matrix_world[:3, :3].T + self.matrix_world[:3, 3]

    def world_tails(self) -> np.ndarray:
        """(N, 3) rest tails in the world (metres)."""
        return self.tails @ self.matrix_world[:3, :3].T + self.matrix_world[:3, 3]

    def world_rotations(self) -> np.ndarray:
        """(N, 3, 3) rest frames in the world."""
        return self.rotation @ self.rest_rotations
