"""Retargeting: hmu's motion (SMPL joints and rotations) onto any humanoid armature (numpy).

Works in Blender's Z-up world, metres: hmu's Y-up body frame maps in by ``BODY_TO_WORLD``
(SMPL (x, y, z) -> (x, -z, y), the +90° about X of hmu's own rig), the target by its object
transform (:class:`~hmu_core.motion.rig_rest.RigRest`), so units, object rotation and scale
never reach the maths.

Per mapped bone ``b`` playing SMPL joint ``j`` (:mod:`hmu_core.motion.bone_maps`):

* its *segment* runs from its head to the head of the bone that plays the next mapped joint
  along the SMPL chain (thigh -> calf; spine1 -> spine3 when spine2 has no bone); hmu's segment
  runs between the same two joints;
* a rest alignment ``A_b`` turns the target's rest segment onto hmu's rest segment exactly,
  and the target's body forward (or up, for bones that point forward, such as feet) onto hmu's
  as well as it can: that absorbs T-pose vs A-pose, bone axes and rolls, and the facing;
* posed: ``W_b(t) = S(t) · G_j(t) · A_b · R_b``, with ``G_j`` hmu's world rotation of the joint
  (relative to its rest), ``R_b`` the bone's rest frame and ``S(t)`` the small swing that makes
  the segment direction equal hmu's posed one (exact, also when the segment skips joints);
* bones with no mapped joint below them along the chain (hands, head, toes) take their mapped
  parent joint's alignment; bones with no joint at all (twist, fingers, IK helpers, an extra
  spine bone) keep their rest pose relative to their parent; both are reported.

The root bone's head follows hmu's pelvis scaled by the leg-length ratio (pelvis height above
the feet at rest, target over hmu), about the target's rest position, so the target stands on
its own floor (ground height kept) and walks in hmu's direction (heading kept): hmu's origin
lands on the target's rest position. Finally the feet are planted
(:mod:`hmu_core.motion.foot_contact`) on the target's own legs, whose proportions differ from
hmu's: its feet are pinned where hmu's feet are in contact, at hmu's foot height (scaled),
kept above its floor, the hips lowered where a leg cannot reach, the thigh and calf turned by
a two-bone IK and the foot turned towards its toe's goal.

Outputs are pose-bone values as Blender applies them: quaternion ``rotation_quaternion`` per
bone (rest frame relative, parent-relative) and the root bone's ``location``.

Usage::

    from hmu_core.motion.retarget import retarget
    result = retarget(motion, rig, detect_bone_map(rig.names, rig.parents).bones)
    result.rotations[:, rig.index("mixamorig:LeftArm")]    # (T, 4) w, x, y, z
    result.report.lines()                                   # what was mapped, missing, extra
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hmu_core.errors import MotionError
from hmu_core.motion import quaternion
from hmu_core.motion.bone_maps import check_bone_map, missing_parts
from hmu_core.motion.foot_contact import (
    FootParams,
    LegJoints,
    ankle_goals,
    foot_contacts,
    reach_drop,
    solve_leg,
)
from hmu_core.motion.motion import Motion
from hmu_core.motion.rig_rest import RigRest
from hmu_core.motion.skeleton import JOINT_NAMES, NUM_JOINTS, SMPL_PARENTS
from hmu_core.motion.smpl import CHILDREN

__all__ = ["BODY_TO_WORLD", "RetargetReport", "RetargetResult", "bone_direction_errors",
           "retarget", "segment_pairs"]  # fmt: skip

BODY_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""hmu's Y-up body frame (x left, y up, z forward) -> Blender's Z-up world (faces -Y)."""
CHAIN_CHILD = {0: 3, 9: 12}
"""Joints with several children continue the chain here (pelvis -> spine1, spine3 -> neck)."""
FEET = (7, 8, 10, 11)
DEFAULT_FEET = FootParams()
MIN_SEGMENT_M = 0.01
"""A target segment shorter than this (m) is measured along its bone's axis instead."""
LEGS = (("left_hip", "left_knee", "left_ankle", "left_foot"),
        ("right_hip", "right_knee", "right_ankle", "right_foot"))


def _chain_child(j: int) -> int | None:
    if j in CHAIN_CHILD:
        return CHAIN_CHILD[j]
    kids = [c for c in CHILDREN[j] if c < NUM_JOINTS]
    return kids[0] if len(kids) == 1 else None


def segment_pairs(bones: Mapping[str, str]) -> dict[str, str]:
    """``{joint: segment-end joint}`` for every mapped joint with a mapped joint further along
    its SMPL chain (the segment both directions are measured on)."""
    out = {}
    for joint in bones:
        k = _chain_child(JOINT_NAMES.index(joint))
        while k is not None and JOINT_NAMES[k] not in bones:
            k = _chain_child(k)
        if k is not None:
            out[joint] = JOINT_NAMES[k]
    return out


@dataclass(frozen=True)
class RetargetReport:
    """What a retarget did with the two skeletons.

    Attributes:
        mapped: ``{smpl joint: bone}``.
        missing: body part -> its SMPL joints with no bone (their motion is carried by the
            neighbouring bones).
        unmapped_bones: bones that only follow their parent (twist, fingers, helpers...).
        scale: the leg-length ratio applied to the root motion (target over hmu).
        warnings: problems found after the fact (the Blender side adds one when the rig's
            constraints pose it differently).
    """

    mapped: dict[str, str]
    missing: dict[str, list[str]]
    unmapped_bones: tuple[str, ...]
    scale: float
    warnings: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """Human-readable summary lines, for logs and the add-on's reports."""
        out = [f"{len(self.mapped)} of {NUM_JOINTS} body joints mapped; root motion scaled "
               f"x{self.scale:.3f} (leg length)"]
        for part, joints in self.missing.items():
            out.append(f"no bone for {part}: {', '.join(joints)} (the bones around follow)")
        if self.unmapped_bones:
            some = ", ".join(self.unmapped_bones[:6])
            more = f" and {len(self.unmapped_bones) - 6} more" if len(self.unmapped_bones) > 6 \
                else ""
            out.append(f"{len(self.unmapped_bones)} extra bone(s) keep their rest pose: "
                       f"{some}{more}")
        return out + list(self.warnings)


@dataclass(frozen=True, eq=False)
class RetargetResult:
    """Pose-bone values of a retargeted motion.

    Attributes:
        rig: the target's rest pose.
        rotations: (T, N, 4) ``rotation_quaternion`` per bone (w, x, y, z), sign-continuous;
            identity for bones that keep their rest pose.
        root_bone: the bone that gets a ``location`` (the pelvis's).
        root_location: (T, 3) its ``location`` (bone rest frame, rig units).
        keyed: names of the bones that move (the mapped ones), in rig order.
        world_heads: (T, N, 3) posed bone heads in the world (metres).
        world_rotations: (T, N, 3, 3) posed bone frames in the world.
        report: what was mapped, missing and left alone.
        fps: frames per second (the motion's).
    """

    rig: RigRest
    rotations: np.ndarray
    root_bone: str
    root_location: np.ndarray
    keyed: tuple[str, ...]
    world_heads: np.ndarray
    world_rotations: np.ndarray
    report: RetargetReport
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """(3, 3) orthonormal columns [primary, secondary made perpendicular, their cross]."""
    a = primary / np.linalg.norm(primary)
    b = secondary - (secondary @ a) * a
    b = b / np.linalg.norm(b)
    return np.stack([a, b, np.cross(a, b)], axis=1)


def _rest_segment(rig: RigRest, bones: Mapping[str, str], joint: str,
                  end: str) -> tuple[np.ndarray, bool]:
    """The target's rest segment of ``joint`` in the world: its bone's head to ``end``'s
    bone's head, or the bone's own axis (head to tail, flagged True) when the two heads
    (nearly) coincide, as a control rig's FK spine controls do."""
    heads = rig.world_heads()
    b, e = rig.index(bones[joint]), rig.index(bones[end])
    segment = heads[e] - heads[b]
    if np.linalg.norm(segment) >= MIN_SEGMENT_M:
        return segment, False
    return rig.world_tails()[b] - heads[b], True


def _swing_matrices(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 3, 3) shortest rotations taking directions a to b (T, 3)."""
    q = quaternion.qbetween(quaternion.normalize(a), quaternion.normalize(b))
    q = np.where(np.linalg.norm(q, axis=-1, keepdims=True) > 0.5, q,
                 quaternion.identity(a.shape[:-1]))
    return quaternion.to_matrix(q)


def _body_axes(rig: RigRest, bones: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The target's rest (forward, up) in the world, from its hips, shoulders and spine."""
    heads = rig.world_heads()
    at = {j: heads[rig.index(b)] for j, b in bones.items()}
    across = (at["left_hip"] - at["right_hip"]) + (at["left_shoulder"] - at["right_shoulder"])
    top = next(at[j] for j in ("neck", "spine3", "head", "spine2", "spine1") if j in at)
    up = top - at["pelvis"]
    frame = _frame(across, up)  # x = left, y = up, z = forward (as hmu's body frame)
    return frame[:, 2], frame[:, 1]


class _Solver:
    """The state of one retarget (keeps :func:`retarget` readable)."""

    def __init__(self, motion: Motion, rig: RigRest, bones: dict[str, str]) -> None:
        self.rig, self.bones = rig, bones
        self.index = {j: rig.index(b) for j, b in bones.items()}
        pose = motion.smpl_pose()
        c = BODY_TO_WORLD
        g = quaternion.to_matrix(pose.global_rotations())  # (T, 24, 3, 3) body frame
        self.g = c @ g @ c.T
        self.x = pose.joints() @ c.T  # (T, 24, 3) world
        rest = np.zeros((len(SMPL_PARENTS), 3))
        for j, p in enumerate(SMPL_PARENTS):
            rest[j] = (rest[p] if p >= 0 else 0.0) + pose.rest_offsets[j]
        self.rest = rest @ c.T
        self.heads0 = rig.world_heads()
        self.frames0 = rig.world_rotations()
        self.num_frames = pose.num_frames

    def alignments(self) -> dict[str, np.ndarray]:
        """Rest alignment A_b per mapped joint (world rotations, see the module docstring)."""
        forward_t, up_t = _body_axes(self.rig, self.bones)
        forward_s, up_s = BODY_TO_WORLD[:, 2], BODY_TO_WORLD[:, 1]
        pairs = segment_pairs(self.bones)
        out: dict[str, np.ndarray] = {}
        for joint in JOINT_NAMES:  # parents first: leaves reuse their parent's alignment
            if joint not in self.bones:
                continue
            if joint not in pairs:
                k = SMPL_PARENTS[JOINT_NAMES.index(joint)]
                while k >= 0 and JOINT_NAMES[k] not in out:
                    k = SMPL_PARENTS[k]
                out[joint] = out[JOINT_NAMES[k]] if k >= 0 else np.eye(3)
                continue
            end = pairs[joint]
            j, e = JOINT_NAMES.index(joint), JOINT_NAMES.index(end)
            d_s = self.rest[e] - self.rest[j]
            d_t, _ = _rest_segment(self.rig, self.bones, joint, end)
            direction = quaternion.normalize(d_s)
            use_up = abs(direction @ forward_s) > abs(direction @ up_s)
            sec_s, sec_t = (up_s, up_t) if use_up else (forward_s, forward_t)
            out[joint] = _frame(d_s, sec_s) @ _frame(d_t, sec_t).T
        return out

    def mapped_rotations(self) -> dict[str, np.ndarray]:
        """(T, 3, 3) posed world frame per mapped joint."""
        pairs = segment_pairs(self.bones)
        out = {}
        for joint, align in self.alignments().items():
            j = JOINT_NAMES.index(joint)
            w = self.g[:, j] @ align @ self.frames0[self.index[joint]]
            if joint in pairs:
                e = JOINT_NAMES.index(pairs[joint])
                rest_dir, _ = _rest_segment(self.rig, self.bones, joint, pairs[joint])
                posed = w @ (self.frames0[self.index[joint]].T @ rest_dir)
                w = _swing_matrices(posed, self.x[:, e] - self.x[:, j]) @ w
            out[joint] = w
        return out

    def root_path(self) -> tuple[np.ndarray, float, float]:
        """(T, 3) world path of the pelvis bone's head, the leg-length ratio, the floor (z)."""
        height_s = self.rest[0, 2] - self.rest[list(FEET), 2].min()
        feet_t = [self.index[j] for j in ("left_ankle", "right_ankle", "left_foot", "right_foot")
                  if j in self.index]
        pelvis0 = self.heads0[self.index["pelvis"]]
        floor = float(self.heads0[feet_t, 2].min())
        scale = float((pelvis0[2] - floor) / height_s)
        if not np.isfinite(scale) or scale <= 0:
            raise MotionError("the target's pelvis is not above its feet in the rest pose; "
                              "check the bone map (hips, ankles)")
        path = np.empty((self.num_frames, 3))
        path[:, :2] = pelvis0[:2] + scale * self.x[:, 0, :2]
        path[:, 2] = floor + scale * self.x[:, 0, 2]
        return path, scale, floor

    def pose_all(self, world: dict[int, np.ndarray], root: np.ndarray) -> tuple[np.ndarray,
                                                                                  np.ndarray]:
        """(T, N, 3, 3) world frames and (T, N, 3) world heads of every bone: mapped bones
        from ``world``, the others rest-relative to their parent; the pelvis head at ``root``."""
        rig, n = self.rig, len(self.rig.names)
        frames = np.empty((self.num_frames, n, 3, 3))
        heads = np.empty((self.num_frames, n, 3))
        pelvis = self.index["pelvis"]
        for b, p in enumerate(rig.parents):
            if b in world:
                frames[:, b] = world[b]
            elif p < 0:
                frames[:, b] = self.frames0[b]
            else:
                frames[:, b] = frames[:, p] @ (self.frames0[p].T @ self.frames0[b])
            if b == pelvis:
                heads[:, b] = root
            elif p < 0:
                heads[:, b] = self.heads0[b]
            else:
                offset = self.frames0[p].T @ (self.heads0[b] - self.heads0[p])
                heads[:, b] = heads[:, p] + frames[:, p] @ offset
        return frames, heads

    def _legs(self, frames: np.ndarray, heads: np.ndarray,
              contacts: np.ndarray) -> list[tuple[tuple[int, int, int], LegJoints, np.ndarray]]:
        """Per mapped leg: its (hip, knee, ankle) bones, joint paths in hmu's Y-up frame and
        (T, 2) ankle/toe contacts (a leg without a toe bone uses the foot's tail, unpinned)."""
        out = []
        for side, names in enumerate(LEGS):
            if not all(n in self.index for n in names[:3]):
                continue
            hip, knee, ankle = (self.index[n] for n in names[:3])
            flags = contacts[:, 2 * side: 2 * side + 2].copy()
            if names[3] in self.index:
                toe = heads[:, self.index[names[3]]]
            else:
                tail = self.rig.world_tails()[ankle] - self.heads0[ankle]
                toe = heads[:, ankle] + frames[:, ankle] @ (self.frames0[ankle].T @ tail)
                flags[:, 1] = False
            leg = LegJoints(*(p @ BODY_TO_WORLD for p in (heads[:, hip], heads[:, knee],
                                                          heads[:, ankle], toe)))
            out.append(((hip, knee, ankle), leg, flags))
        return out

    def _sides(self) -> list[int]:
        """The legs :meth:`_legs` returns (0 left, 1 right), in its order."""
        return [s for s, names in enumerate(LEGS) if all(n in self.index for n in names[:3])]

    def _foot_heights(self, ankle: int, side: int,
                      scale: float) -> tuple[np.ndarray, np.ndarray]:
        """(T,) ankle and toe heights (world z) that hmu's feet ask of the target's: its rest
        height above its floor plus hmu's lift above hmu's rest, scaled."""
        names = LEGS[side]
        rest_floor = self.rest[list(FEET), 2].min()
        out = []
        for joint, bone in ((names[2], ankle), (names[3], self.index.get(names[3]))):
            j = JOINT_NAMES.index(joint)
            lift = self.x[:, j, 2] - (self.rest[j, 2] - rest_floor)
            base = self.heads0[bone, 2] if bone is not None else self.heads0[ankle, 2]
            out.append(base + scale * lift)
        return out[0], out[1]

    def plant_feet(self, world: dict[int, np.ndarray], root: np.ndarray, contacts: np.ndarray,
                   params: FootParams, scale: float) -> np.ndarray:
        """Pin the target's feet (see :mod:`hmu_core.motion.foot_contact`): updates the
        thigh, calf and foot frames in ``world`` and returns the (possibly lowered) root."""
        c = BODY_TO_WORLD
        legs = self._legs(*self.pose_all(world, root), contacts)
        goals = [ankle_goals(leg, flags[:, 0], flags[:, 1], params,
                             self._foot_heights(bones[2], side, scale))
                 for side, (bones, leg, flags) in zip(self._sides(), legs, strict=True)]
        root = root.copy()
        root[:, 2] -= reach_drop([leg for _, leg, _ in legs], [g[0] for g in goals])
        frames, heads = self.pose_all(world, root)
        lowered = self._legs(frames, heads, contacts)  # the same legs, hips lowered
        for (hip, knee, ankle), leg, (ankle_goal, toe_goal) in zip(
                (x[0] for x in legs), (x[1] for x in lowered), goals, strict=True):
            new = solve_leg(leg, ankle_goal, toe_goal, params.floor)
            k1, a1, t1 = (p @ c.T for p in (new.knee, new.ankle, new.toe))
            h, k0, a0, toe = heads[:, hip], heads[:, knee], heads[:, ankle], leg.toe @ c.T
            turn_thigh = _swing_matrices(k0 - h, k1 - h)
            moved = np.einsum("tij,tj->ti", turn_thigh, a0 - k0)
            world[knee] = _swing_matrices(moved, a1 - k1) @ turn_thigh @ frames[:, knee]
            world[hip] = turn_thigh @ frames[:, hip]
            world[ankle] = _swing_matrices(toe - a0, t1 - a1) @ frames[:, ankle]
        return root


def retarget(motion: Motion, rig: RigRest, bone_map: Mapping[str, str], *,
             feet: FootParams | None = DEFAULT_FEET,
             contacts: np.ndarray | None = None) -> RetargetResult:
    """Retarget ``motion`` onto the armature ``rig`` through ``bone_map``.

    Args:
        motion: hmu's clip (its SMPL pose is computed if missing).
        rig: the target's rest pose and object transform.
        bone_map: ``{smpl joint: bone name}`` (:mod:`hmu_core.motion.bone_maps`).
        feet: foot clean-up on the target (``floor`` is ignored: the target's own floor is
            used); ``None`` turns it off.
        contacts: (T, 4) bool foot contacts; default
            :func:`~hmu_core.motion.foot_contact.foot_contacts` of the motion.
    Returns:
        The pose-bone values, posed world heads and frames, and a report.
    Raises:
        ConfigError: a map that cannot drive a body (says which parts are missing), a bone
            not in the rig, a non-uniform object scale.
        MotionError: a rest pose whose pelvis is not above its feet.
    """
    bones = check_bone_map(bone_map, rig.names, rig.parents)
    solver = _Solver(motion, rig, bones)
    root, scale, floor = solver.root_path()
    world = {solver.index[j]: w for j, w in solver.mapped_rotations().items()}
    if feet is not None:
        flags = foot_contacts(motion, feet.threshold) if contacts is None else np.asarray(contacts)
        if flags.shape != (motion.num_frames, 4):
            raise MotionError(f"contacts must be ({motion.num_frames}, 4), got {flags.shape}")
        params = FootParams(blend=feet.blend, floor=floor, threshold=feet.threshold)
        root = solver.plant_feet(world, root, flags, params, scale)
    frames, heads = solver.pose_all(world, root)

    # Pose-bone rotations: armature-space frames P = O^T W, then B = R_b^T R_p P_p^T P_b.
    arm = np.einsum("ij,tnjk->tnik", rig.rotation.T, frames)
    rest = rig.rest_rotations
    basis = np.empty_like(arm)
    for b, p in enumerate(rig.parents):
        if p < 0:
            basis[:, b] = rest[b].T @ arm[:, b]
        else:
            basis[:, b] = rest[b].T @ rest[p] @ np.swapaxes(arm[:, p], -1, -2) @ arm[:, b]
    rotations = quaternion.from_matrix(basis)
    rotations = quaternion.make_continuous(rotations, axis=0)

    pelvis = solver.index["pelvis"]
    local_head = (root - rig.matrix_world[:3, 3]) @ rig.rotation / rig.scale
    root_location = (local_head - rig.heads[pelvis]) @ rest[pelvis]
    if not (np.all(np.isfinite(rotations)) and np.all(np.isfinite(root_location))):
        raise MotionError("retargeting produced non-finite values; check the rig's rest pose")
    mapped_idx = set(solver.index.values())
    report = RetargetReport(
        mapped=dict(bones), missing=missing_parts(bones),
        unmapped_bones=tuple(n for i, n in enumerate(rig.names) if i not in mapped_idx),
        scale=scale)
    return RetargetResult(
        rig=rig, rotations=rotations, root_bone=rig.names[pelvis], root_location=root_location,
        keyed=tuple(n for i, n in enumerate(rig.names) if i in mapped_idx), world_heads=heads,
        world_rotations=frames, report=report, fps=motion.fps)


def bone_direction_errors(result: RetargetResult, motion: Motion) -> dict[str, np.ndarray]:
    """Per mapped segment, (T,) angle (degrees) between the retargeted bone's world direction
    (its head to the next mapped bone's head, or its own axis where those heads coincide) and
    hmu's (the same two joints, posed)."""
    joints = motion.smpl_pose().joints() @ BODY_TO_WORLD.T
    bones, rig = result.report.mapped, result.rig
    out = {}
    for joint, end in segment_pairs(bones).items():
        b, e = rig.index(bones[joint]), rig.index(bones[end])
        rest, along_axis = _rest_segment(rig, bones, joint, end)
        if along_axis:
            local = rig.world_rotations()[b].T @ rest
            got = quaternion.normalize(result.world_rotations[:, b] @ local)
        else:
            got = quaternion.normalize(result.world_heads[:, e] - result.world_heads[:, b])
        j, k = JOINT_NAMES.index(joint), JOINT_NAMES.index(end)
        want = quaternion.normalize(joints[:, k] - joints[:, j])
        out[joint] = np.degrees(np.arccos(np.clip(np.sum(got * want, axis=-1), -1.0, 1.0)))
    return out
