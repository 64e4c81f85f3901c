"""A simple mannequin body for hmu's SMPL rig, made procedurally (no licensed data).

Tapered capsules along every joint-to-child segment of the skeleton (pelvis to hips and
spine3 to collars too, so there are no gaps at the hips and shoulders), a sphere at every
joint (they keep elbows and knees closed when bent), a head with a nose (which way it faces
reads at a glance), hands as flattened paddles, and feet from heel to toe tip with a flat
sole on the floor. Every part is weighted fully to one bone (rigid skinning), so the body
follows the rig exactly and travels with FBX/GLB exports.

:func:`mannequin_parts` is plain numpy (tested for coverage without building a mesh);
:func:`mannequin_mesh` turns the parts into a Blender mesh.

Sizes are for a 1.7 m adult and scale with the skeleton's leg length.
"""

from __future__ import annotations

from dataclasses import dataclass

import bmesh
import bpy
import numpy as np
from mathutils import Matrix, Vector

from hmu_core.motion.skeleton import SMPL_JOINT_NAMES

__all__ = ["Part", "mannequin_mesh", "mannequin_parts"]

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
REFERENCE_LEG = 0.80
"""Hip-to-ankle length (m) the radii below are written for."""

# (from joint, to joint, radius at from, radius at to, bone). Bones are the segment's joint
# (the bone that moves it), the pelvis for the hips and spine3 for the collars.
SEGMENTS: tuple[tuple[str, str, float, float, str], ...] = (
    ("pelvis", "spine1", 0.115, 0.105, "pelvis"),
    ("spine1", "spine2", 0.105, 0.105, "spine1"),
    ("spine2", "spine3", 0.105, 0.115, "spine2"),
    ("spine3", "neck", 0.105, 0.055, "spine3"),
    ("neck", "head", 0.05, 0.05, "neck"),
    *(seg for side in ("left", "right") for seg in (
        ("pelvis", f"{side}_hip", 0.10, 0.085, "pelvis"),
        ("spine3", f"{side}_collar", 0.075, 0.06, "spine3"),
        (f"{side}_collar", f"{side}_shoulder", 0.06, 0.052, f"{side}_collar"),
        (f"{side}_shoulder", f"{side}_elbow", 0.05, 0.04, f"{side}_shoulder"),
        (f"{side}_elbow", f"{side}_wrist", 0.04, 0.031, f"{side}_elbow"),
        (f"{side}_hip", f"{side}_knee", 0.082, 0.056, f"{side}_hip"),
        (f"{side}_knee", f"{side}_ankle", 0.056, 0.04, f"{side}_knee"),
    )),
)
HEAD = ((0.0, 0.065, 0.015), (0.08, 0.105, 0.095))
"""Head ellipsoid: centre offset from the head joint and radii (x, y, z), body frame."""
NOSE = ((0.0, 0.055, 0.105), 0.022)
"""Nose sphere: centre offset from the head joint and radius."""
HAND = (0.10, (0.045, 0.016, 0.038))
"""Hand paddle: length beyond the wrist along the forearm, half-sizes (along, thick, wide)."""
FOOT = (0.06, 0.05, 0.034)
"""Foot: heel behind the ankle, toe tip beyond the ball, radius at the heel (m)."""


@dataclass(frozen=True)
class Part:
    """One convex piece of the body in armature space (SMPL frame: Y-up, faces +Z).

    ``kind`` is ``"capsule"`` (a tapered cylinder from ``a`` to ``b`` with radii ``ra``,
    ``rb``, capped by the joint spheres) or ``"ellipsoid"`` (centre ``a``, half-axes
    ``radii`` along the columns of ``axes``); ``bone`` is the joint index it moves with.
    """

    kind: str
    a: np.ndarray
    b: np.ndarray
    ra: float
    rb: float
    bone: int
    axes: np.ndarray | None = None
    radii: np.ndarray | None = None

    def contains(self, points: np.ndarray, slack: float = 0.0) -> np.ndarray:
        """(N,) bool: which of ``points`` (N, 3) lie inside (within ``slack`` metres)."""
        points = np.atleast_2d(points)
        if self.kind == "ellipsoid":
            local = (points - self.a) @ self.axes
            return np.sum((local / (self.radii + slack)) ** 2, axis=-1) <= 1.0
        axis = self.b - self.a
        length2 = float(axis @ axis)
        t = np.clip((points - self.a) @ axis / max(length2, 1e-12), 0.0, 1.0)
        radius = self.ra + t * (self.rb - self.ra)
        dist = np.linalg.norm(points - (self.a + t[:, None] * axis), axis=-1)
        return dist <= radius + slack


def _sphere(centre: np.ndarray, radius: float, bone: int) -> Part:
    return Part("ellipsoid", centre, centre, radius, radius, bone, np.eye(3),
                np.full(3, radius))


def _frame_along(direction: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(3, 3) orthonormal columns [direction, up made perpendicular, their cross]."""
    x = direction / np.linalg.norm(direction)
    y = up - (up @ x) * x
    y = y / np.linalg.norm(y)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def mannequin_parts(heads: np.ndarray, floor: float | None = None) -> list[Part]:
    """The body's parts for rest joints ``heads`` (24, 3) (SMPL frame, metres, T-pose).

    ``floor`` is the floor height the soles rest on (default: the lowest joint).
    """
    heads = np.asarray(heads, dtype=np.float64)
    leg = np.linalg.norm(heads[J["left_knee"]] - heads[J["left_hip"]]) + \
        np.linalg.norm(heads[J["left_ankle"]] - heads[J["left_knee"]])
    k = leg / REFERENCE_LEG
    floor = float(heads[:, 1].min()) if floor is None else floor
    parts: list[Part] = []
    joint_radius = np.zeros(len(heads))
    for a, b, ra, rb, bone in SEGMENTS:
        parts.append(Part("capsule", heads[J[a]], heads[J[b]], k * ra, k * rb, J[bone]))
        joint_radius[J[a]] = max(joint_radius[J[a]], k * ra)
        joint_radius[J[b]] = max(joint_radius[J[b]], k * rb)
    for j, radius in enumerate(joint_radius):
        if radius > 0:
            # A joint's sphere moves with the bone below it (it rounds off that bone's end).
            parts.append(_sphere(heads[j], radius, j))
    head = heads[J["head"]]
    parts.append(Part("ellipsoid", head + k * np.array(HEAD[0]), head, 0, 0, J["head"],
                      np.eye(3), k * np.array(HEAD[1])))
    parts.append(_sphere(head + k * np.array(NOSE[0]), k * NOSE[1], J["head"]))
    up = np.array([0.0, 1.0, 0.0])
    for side in ("left", "right"):
        wrist, elbow = heads[J[f"{side}_wrist"]], heads[J[f"{side}_elbow"]]
        along = (wrist - elbow) / np.linalg.norm(wrist - elbow)
        length, half = k * HAND[0], k * np.array(HAND[1])
        parts.append(Part("ellipsoid", wrist + along * length * 0.55, wrist, 0, 0,
                          J[f"{side}_wrist"], _frame_along(along, up),
                          np.array([length * 0.6, half[1] * 1.6, half[2]])))
        ankle, ball = heads[J[f"{side}_ankle"]], heads[J[f"{side}_foot"]]
        # The foot: a capsule from heel to toe tip resting on the floor (the ball joint, the
        # skeleton's lowest point, touches its sole); the ankle's sphere rounds the instep.
        sole_r = k * FOOT[2]
        heel = np.array([ankle[0], floor + sole_r, ankle[2] - k * FOOT[0]])
        tip = np.array([ball[0], floor + sole_r, ball[2] + k * FOOT[1]])
        parts.append(Part("capsule", heel, tip, sole_r, sole_r, J[f"{side}_ankle"]))
        parts.append(_sphere(heel, sole_r, J[f"{side}_ankle"]))
        parts.append(_sphere(tip, sole_r, J[f"{side}_ankle"]))
    return parts


def _part_geometry(part: Part) -> tuple[list[Vector], list[list[int]]]:
    """One part's vertices and faces, made in a bmesh of its own: bmesh's create operators
    cost time in the size of the mesh they add to, so building the whole body in one bmesh
    took 0.75 s, part by part 0.09 s."""
    bm = bmesh.new()
    try:
        if part.kind == "capsule":
            axis = Vector(part.b - part.a)
            placed = Matrix.Translation(Vector((part.a + part.b) / 2)) @ \
                axis.to_track_quat("Z", "Y").to_matrix().to_4x4()
            bmesh.ops.create_cone(bm, cap_ends=True, segments=16, radius1=part.ra,
                                  radius2=part.rb, depth=axis.length, matrix=placed)
        else:
            basis = Matrix(part.axes.tolist()).to_4x4()
            scale = Matrix.Diagonal((*part.radii, 1.0))
            bmesh.ops.create_uvsphere(bm, u_segments=16, v_segments=10, radius=1.0,
                                      matrix=Matrix.Translation(Vector(part.a)) @ basis @ scale)
        bm.verts.index_update()
        return [v.co.copy() for v in bm.verts], [[v.index for v in f.verts] for f in bm.faces]
    finally:
        bm.free()


def mannequin_mesh(name: str, heads: np.ndarray) -> bpy.types.Mesh:
    """A mesh of :func:`mannequin_parts`; each vertex fully weighted to its part's bone
    (deform layer group index = bone index, as the rig's vertex groups are made)."""
    verts: list[Vector] = []
    faces: list[list[int]] = []
    bones: list[int] = []
    for part in mannequin_parts(heads):
        part_verts, part_faces = _part_geometry(part)
        faces += [[len(verts) + i for i in face] for face in part_faces]
        verts += part_verts
        bones += [part.bone] * len(part_verts)
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts, [], faces)
    bm = bmesh.new()
    try:
        bm.from_mesh(mesh)
        deform = bm.verts.layers.deform.verify()
        for vert, bone in zip(bm.verts, bones, strict=True):
            vert[deform][bone] = 1.0
        bmesh.ops.recalc_face_normals(bm, faces=bm.faces)
        bm.to_mesh(mesh)
    finally:
        bm.free()
    mesh.shade_smooth()
    return mesh
