"""Humanoid rigs built in the tests, in each convention's real rest pose, units and axes.

No licensed data: bone positions are typical proportions written down by hand (a 1.8 m
Mixamo-style character, a 1.75 m Unreal-mannequin-style one, a 1.7 m Rigify human), each in
its own convention:

* Mixamo: T-pose, armature data Y-up in centimetres facing +Z, object rotated +90° about X and
  scaled 0.01 (what Blender's FBX importer makes), ``mixamorig:`` names, finger bones;
* UE5: A-pose (arms 45° down, knees slightly bent), armature data Z-up in centimetres facing +Y
  (the mannequin as exported), object scale 0.01, a ``root`` bone at the floor, five spine
  bones, two neck bones, twist bones and IK helper bones;
* Rigify: arms 30° down, Z-up metres facing -Y, DEF- bones with the two-segment limbs
  (``DEF-thigh.L.001`` ...), DEF-pelvis and DEF-breast extras, and non-zero rolls;
* SMPL: hmu's own rig (Y-up data, object +90° about X).

Each builder returns a :class:`~hmu_core.motion.rig_rest.RigRest` and, for the Blender tests,
the edit-bone table ``[(name, parent, head, tail, roll)]`` it came from plus the object matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hmu_core.motion.rig_rest import RigRest


@dataclass(frozen=True)
class RigSpec:
    """Edit-mode bones (``(name, parent or None, head, tail, roll)``) and the object matrix."""

    name: str
    bones: tuple[tuple[str, str | None, tuple, tuple, float], ...]
    matrix_world: np.ndarray

    def rest(self) -> RigRest:
        names = [b[0] for b in self.bones]
        parents = [names.index(b[1]) if b[1] else -1 for b in self.bones]
        return RigRest.from_rolls(names, parents, np.array([b[2] for b in self.bones]),
                                  np.array([b[3] for b in self.bones]),
                                  [b[4] for b in self.bones], self.matrix_world)


def _rot_x(angle: float) -> np.ndarray:
    m = np.eye(4)
    c, s = math.cos(angle), math.sin(angle)
    m[1:3, 1:3] = [[c, -s], [s, c]]
    return m


def _scale(k: float) -> np.ndarray:
    return np.diag([k, k, k, 1.0])


def _build(joints: list[tuple[str, str | None, tuple]], leaf: dict[str, tuple],
           tail_to: dict[str, str], roll=lambda i: 0.0) -> tuple:
    """Bones from head positions: the tail goes to ``tail_to[name]``'s head, else to the only
    child's head, else head + ``leaf[name]``."""
    heads = {n: np.array(h, dtype=float) for n, _, h in joints}
    kids: dict[str, list[str]] = {}
    for n, p, _ in joints:
        if p:
            kids.setdefault(p, []).append(n)
    out = []
    for i, (n, p, _) in enumerate(joints):
        if n in tail_to:
            tail = heads[tail_to[n]]
        elif len(kids.get(n, [])) == 1:
            tail = heads[kids[n][0]]
        else:
            tail = heads[n] + np.array(leaf[n], dtype=float)
        out.append((n, p, tuple(heads[n]), tuple(tail), roll(i)))
    return tuple(out)


def mixamo() -> RigSpec:
    """Mixamo Y Bot-like: cm, Y-up data facing +Z, object +90° X and 0.01, T-pose."""
    pre = "mixamorig:"
    j: list[tuple[str, str | None, tuple]] = [
        ("Hips", None, (0, 104, 1)), ("Spine", "Hips", (0, 114, 0)),
        ("Spine1", "Spine", (0, 126, -1)), ("Spine2", "Spine1", (0, 139, -1)),
        ("Neck", "Spine2", (0, 155, -2)), ("Head", "Neck", (0, 164, 1)),
        ("HeadTop_End", "Head", (0, 182, 2)),
    ]
    for side, sx in (("Left", 1), ("Right", -1)):
        j += [
            (f"{side}Shoulder", "Spine2", (6 * sx, 149, -1)),
            (f"{side}Arm", f"{side}Shoulder", (18 * sx, 148, -2)),
            (f"{side}ForeArm", f"{side}Arm", (45 * sx, 148, -3)),
            (f"{side}Hand", f"{side}ForeArm", (71 * sx, 148, -2)),
            (f"{side}HandIndex1", f"{side}Hand", (80 * sx, 148, 1)),
            (f"{side}HandIndex2", f"{side}HandIndex1", (84 * sx, 148, 1)),
            (f"{side}HandThumb1", f"{side}Hand", (74 * sx, 146, 3)),
            (f"{side}UpLeg", "Hips", (9 * sx, 96, 0)),
            (f"{side}Leg", f"{side}UpLeg", (9 * sx, 53, 1)),
            (f"{side}Foot", f"{side}Leg", (9 * sx, 9, -3)),
            (f"{side}ToeBase", f"{side}Foot", (9 * sx, 1.5, 10)),
            (f"{side}Toe_End", f"{side}ToeBase", (9 * sx, 1.5, 18)),
        ]
    leaf = {"HeadTop_End": (0, 8, 0)}
    for side, sx in (("Left", 1), ("Right", -1)):
        leaf |= {f"{side}HandIndex2": (3 * sx, 0, 0), f"{side}HandThumb1": (2 * sx, 0, 2),
                 f"{side}Toe_End": (0, 0, 5), f"{side}Hand": (8 * sx, 0, 0)}
    bones = _build([(pre + n, pre + p if p else None, h) for n, p, h in j],
                   {pre + k: v for k, v in leaf.items()},
                   {pre + "Hips": pre + "Spine", pre + "Spine2": pre + "Neck",
                    pre + "LeftHand": pre + "LeftHandIndex1",
                    pre + "RightHand": pre + "RightHandIndex1"},
                   roll=lambda i: 0.3 * math.sin(1.7 * i))  # FBX imports carry odd rolls
    return RigSpec("mixamo", bones, _rot_x(math.pi / 2) @ _scale(0.01))


def ue5() -> RigSpec:
    """UE5 mannequin-like: cm, Z-up data facing +Y (left is -X), object 0.01, A-pose."""
    j: list[tuple[str, str | None, tuple]] = [
        ("root", None, (0, 0, 0)), ("pelvis", "root", (0, 1, 96)),
        ("spine_01", "pelvis", (0, 0, 106)), ("spine_02", "spine_01", (0, -1, 115)),
        ("spine_03", "spine_02", (0, -1, 124)), ("spine_04", "spine_03", (0, -1, 133)),
        ("spine_05", "spine_04", (0, 0, 142)), ("neck_01", "spine_05", (0, 1, 153)),
        ("neck_02", "neck_01", (0, 2, 158)), ("head", "neck_02", (0, 3, 164)),
        ("ik_foot_root", "root", (0, 0, 0)),
    ]
    arm = math.radians(45.0)
    for s, sx in (("l", -1), ("r", 1)):  # facing +Y: the character's left is -X
        shoulder = np.array([17.0 * sx, -1.0, 146.0])
        down = np.array([sx * math.cos(arm), 0.0, -math.sin(arm)])
        elbow, wrist = shoulder + 27.0 * down, shoulder + 53.0 * down
        j += [
            (f"clavicle_{s}", "spine_05", (4 * sx, 1, 146)),
            (f"upperarm_{s}", f"clavicle_{s}", tuple(shoulder)),
            (f"upperarm_twist_01_{s}", f"upperarm_{s}", tuple(shoulder + 13.0 * down)),
            (f"lowerarm_{s}", f"upperarm_{s}", tuple(elbow)),
            (f"lowerarm_twist_01_{s}", f"lowerarm_{s}", tuple(elbow + 13.0 * down)),
            (f"hand_{s}", f"lowerarm_{s}", tuple(wrist)),
            (f"index_01_{s}", f"hand_{s}", tuple(wrist + 9.0 * down + [0, 2, 0])),
            (f"thigh_{s}", "pelvis", (10 * sx, 1, 92)),
            (f"thigh_twist_01_{s}", f"thigh_{s}", (10 * sx, 0, 72)),
            (f"calf_{s}", f"thigh_{s}", (10.5 * sx, 2, 50)),
            (f"calf_twist_01_{s}", f"calf_{s}", (10.5 * sx, 1, 30)),
            (f"foot_{s}", f"calf_{s}", (11 * sx, -1, 8)),
            (f"ball_{s}", f"foot_{s}", (11.5 * sx, 13, 2)),
            (f"ik_foot_{s}", "ik_foot_root", (11 * sx, -1, 8)),
        ]
    leaf = {"head": (0, 2, 18), "ik_foot_root": (0, 0, 10)}
    for s, sx in (("l", -1), ("r", 1)):
        leaf |= {f"ball_{s}": (0, 6, 0), f"index_01_{s}": (4 * sx, 0, -3),
                 f"upperarm_twist_01_{s}": (5 * sx, 0, -5),
                 f"lowerarm_twist_01_{s}": (5 * sx, 0, -5),
                 f"thigh_twist_01_{s}": (0, 0, -8), f"calf_twist_01_{s}": (0, 0, -8),
                 f"ik_foot_{s}": (0, 5, 0), f"hand_{s}": (6 * sx, 0, -6)}
    tail_to = {"pelvis": "spine_01", "spine_05": "neck_01", "root": "pelvis"}
    for s in ("l", "r"):
        tail_to |= {f"upperarm_{s}": f"lowerarm_{s}", f"lowerarm_{s}": f"hand_{s}",
                    f"thigh_{s}": f"calf_{s}", f"calf_{s}": f"foot_{s}"}
    bones = _build(j, leaf, tail_to, roll=lambda i: [0.0, 1.5708, -1.5708, 3.1416][i % 4])
    return RigSpec("ue5", bones, _scale(0.01))


def rigify() -> RigSpec:
    """Rigify DEF bones: Z-up metres facing -Y (left is +X), arms 30° down, split limbs."""
    j: list[tuple[str, str | None, tuple]] = [
        ("root", None, (0, 0, 0)), ("DEF-spine", "root", (0, 0.05, 0.98)),
        ("DEF-spine.001", "DEF-spine", (0, 0.06, 1.08)),
        ("DEF-spine.002", "DEF-spine.001", (0, 0.05, 1.19)),
        ("DEF-spine.003", "DEF-spine.002", (0, 0.05, 1.30)),
        ("DEF-spine.004", "DEF-spine.003", (0, 0.04, 1.46)),
        ("DEF-spine.005", "DEF-spine.004", (0, 0.02, 1.51)),
        ("DEF-spine.006", "DEF-spine.005", (0, 0.01, 1.56)),
    ]
    arm = math.radians(30.0)
    for s, sx in (("L", 1), ("R", -1)):
        shoulder = np.array([0.17 * sx, 0.04, 1.40])
        down = np.array([sx * math.cos(arm), 0.0, -math.sin(arm)])
        elbow, wrist = shoulder + 0.27 * down, shoulder + 0.52 * down
        j += [
            (f"DEF-shoulder.{s}", "DEF-spine.003", (0.02 * sx, -0.02, 1.41)),
            (f"DEF-upper_arm.{s}", f"DEF-shoulder.{s}", tuple(shoulder)),
            (f"DEF-upper_arm.{s}.001", f"DEF-upper_arm.{s}", tuple(shoulder + 0.135 * down)),
            (f"DEF-forearm.{s}", f"DEF-upper_arm.{s}.001", tuple(elbow)),
            (f"DEF-forearm.{s}.001", f"DEF-forearm.{s}", tuple(elbow + 0.125 * down)),
            (f"DEF-hand.{s}", f"DEF-forearm.{s}.001", tuple(wrist)),
            (f"DEF-breast.{s}", "DEF-spine.003", (0.1 * sx, -0.08, 1.33)),
            (f"DEF-pelvis.{s}", "DEF-spine", (0.0, 0.05, 0.98)),
            (f"DEF-thigh.{s}", "DEF-spine", (0.09 * sx, 0.03, 0.93)),
            (f"DEF-thigh.{s}.001", f"DEF-thigh.{s}", (0.09 * sx, 0.02, 0.72)),
            (f"DEF-shin.{s}", f"DEF-thigh.{s}.001", (0.09 * sx, 0.0, 0.50)),
            (f"DEF-shin.{s}.001", f"DEF-shin.{s}", (0.09 * sx, 0.02, 0.29)),
            (f"DEF-foot.{s}", f"DEF-shin.{s}.001", (0.09 * sx, 0.04, 0.08)),
            (f"DEF-toe.{s}", f"DEF-foot.{s}", (0.09 * sx, -0.09, 0.015)),
        ]
    leaf = {"DEF-spine.006": (0, 0, 0.2), "root": (0, 0.3, 0)}
    for s, sx in (("L", 1), ("R", -1)):
        leaf |= {f"DEF-hand.{s}": (0.08 * sx, 0, -0.04), f"DEF-toe.{s}": (0, -0.06, 0),
                 f"DEF-breast.{s}": (0, -0.06, 0), f"DEF-pelvis.{s}": (0.1 * sx, -0.05, 0.05)}
    tail_to = {"DEF-spine": "DEF-spine.001", "DEF-spine.003": "DEF-spine.004"}
    bones = _build(j, leaf, tail_to, roll=lambda i: 0.1 * (i % 5) - 0.2)
    return RigSpec("rigify", bones, np.eye(4))


def smpl() -> RigSpec:
    """hmu's own rig: SMPL T-pose rest (HumanML3D lengths), Y-up data, object +90° about X."""
    from hmu_core.motion import smpl
    from hmu_core.motion.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS

    offsets = smpl.rest_offsets()
    heads = np.zeros_like(offsets)
    for k, p in enumerate(SMPL_PARENTS):
        heads[k] = (heads[p] if p >= 0 else 0.0) + offsets[k]
    heads[:, 1] -= heads[:, 1].min()
    joints = [(n, SMPL_JOINT_NAMES[p] if p >= 0 else None, tuple(heads[k]))
              for k, (n, p) in enumerate(zip(SMPL_JOINT_NAMES, SMPL_PARENTS, strict=True))]
    leaf = {"head": (0, 0.1, 0), "left_foot": (0, 0, 0.05), "right_foot": (0, 0, 0.05),
            "left_hand": (0.05, 0, 0), "right_hand": (-0.05, 0, 0)}
    bones = _build(joints, leaf, {"pelvis": "spine1", "spine3": "neck"})
    return RigSpec("smpl", bones, _rot_x(math.pi / 2))


BUILDERS = {"mixamo": mixamo, "ue5": ue5, "rigify": rigify, "smpl": smpl}


def build_in_blender(spec: RigSpec, name: str | None = None):
    """The rig as a Blender armature object in the context scene (needs bpy): edit bones with
    the spec's heads, tails, rolls and parents, the object at ``spec.matrix_world``."""
    import bpy
    from mathutils import Matrix

    data = bpy.data.armatures.new(name or spec.name)
    obj = bpy.data.objects.new(name or spec.name, data)
    bpy.context.scene.collection.objects.link(obj)
    obj.matrix_world = Matrix(spec.matrix_world.tolist())
    view_layer = bpy.context.view_layer
    view_layer.objects.active = obj
    with bpy.context.temp_override(active_object=obj, object=obj):
        bpy.ops.object.mode_set(mode="EDIT")
        made = {}
        for bone_name, parent, head, tail, roll in spec.bones:
            bone = data.edit_bones.new(bone_name)
            bone.head, bone.tail, bone.roll = head, tail, roll
            if parent:
                bone.parent = made[parent]
            made[bone_name] = bone
        bpy.ops.object.mode_set(mode="OBJECT")
    return obj
