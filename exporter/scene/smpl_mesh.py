"""A real SMPL body mesh from a user's model file, loaded with numpy only (no pickles).

The SMPL licence forbids bundling the model, and official ``.pkl`` files need chumpy and
pickle loading (reference/runtime.md §4), so the add-on reads a plain ``.npz`` with the
arrays ``v_template`` (V, 3), ``weights`` (V, 24), ``f`` (F, 3) and ``J_regressor`` (24, V)
(dense), the layout smplx also accepts. The mesh is skinned to the rig with one vertex group
per SMPL joint and an Armature modifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from hmu_core.errors import ConfigError

REQUIRED = ("v_template", "weights", "f", "J_regressor")


@dataclass(frozen=True)
class SMPLModel:
    vertices: np.ndarray  # (V, 3) rest vertices, Y-up metres
    weights: np.ndarray  # (V, 24) skinning weights
    faces: np.ndarray  # (F, 3) vertex indices
    joints: np.ndarray  # (24, 3) rest joints, J_regressor @ v_template

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])


def load_smpl_npz(path: str | Path) -> SMPLModel:
    """Read and check an SMPL ``.npz``.

    Raises:
        ConfigError: not a readable ``.npz``, a missing array or a wrong shape, naming it.
    """
    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise ConfigError(f"{p.name}: hmu reads SMPL models as .npz (v_template, weights, f, "
                          f"J_regressor); convert the .pkl once with numpy (no pickles are "
                          f"loaded inside Blender)")
    try:
        with np.load(p, allow_pickle=False) as data:
            missing = [k for k in REQUIRED if k not in data.files]
            if missing:
                raise ConfigError(f"{p.name} lacks the arrays {missing}; an SMPL .npz needs "
                                  f"{', '.join(REQUIRED)}")
            arrays = {k: np.asarray(data[k]) for k in REQUIRED}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read SMPL model {p}: {exc}") from None
    verts = arrays["v_template"].astype(np.float64)
    n = verts.shape[0] if verts.ndim == 2 else -1
    shapes = {"v_template": (n, 3), "weights": (n, 24), "J_regressor": (24, n)}
    for key, shape in shapes.items():
        if n < 1 or arrays[key].shape != shape:
            raise ConfigError(f"{p.name}: {key} has shape {arrays[key].shape}, expected "
                              f"{shape} (V vertices, 24 joints)")
    faces = arrays["f"]
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= n:
        raise ConfigError(f"{p.name}: f must be (F, 3) vertex indices below {n}")
    joints = arrays["J_regressor"].astype(np.float64) @ verts
    return SMPLModel(verts, arrays["weights"].astype(np.float64), faces.astype(np.int64),
                     joints)


def add_smpl_mesh(armature: Any, model: SMPLModel, joint_names: tuple[str, ...],
                  name: str = "hmu_smpl_body") -> Any:
    """A skinned mesh child of ``armature`` in its (Y-up, SMPL) armature space."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(model.vertices.tolist(), [], model.faces.tolist())
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    for collection in armature.users_collection:
        collection.objects.link(obj)
    obj.parent = armature
    for j, joint in enumerate(joint_names):
        group = obj.vertex_groups.new(name=joint)
        column = model.weights[:, j]
        for index in np.flatnonzero(column > 0).tolist():
            group.add([index], float(column[index]), "REPLACE")
    modifier = obj.modifiers.new("Armature", "ARMATURE")
    modifier.object = armature
    return obj
