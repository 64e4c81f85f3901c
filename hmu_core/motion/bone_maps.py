"""Bone maps: which bone of a user's armature plays which SMPL joint (numpy-free, stdlib only).

A map is ``{smpl joint name: bone name}`` over the 22 HumanML3D joints (the names of
``skeleton.JOINT_NAMES``); one bone per joint, one joint per bone. Built-in maps cover the
conventions animators meet most:

* ``mixamo``: ``mixamorig:Hips`` ... (any ``mixamorig<N>:`` prefix, or none);
* ``rigify``: Rigify's deform bones (``DEF-spine`` ... ``DEF-toe.L``);
* ``rigify_fk``: Rigify's FK controls (``torso``, ``spine_fk.001``, ``thigh_fk.L`` ...), for
  animating the control rig (its IK/FK switches set to FK);
* ``ue5``: the Unreal mannequin (``pelvis``, ``spine_01`` ... ``spine_05``, ``thigh_l``);
* ``smpl``: hmu's own rig (``pelvis``, ``left_hip``...) and the ``L_Hip``-style SMPL names.

Any other humanoid gets :func:`detect_bone_map`: bone names are split into words and a side,
matched against each body part's keywords, and the spine chain between the pelvis and the
neck is shared out along the hierarchy. A map that cannot drive a body says which body parts
are missing (:func:`check_bone_map`). Maps are saved and shared as small JSON presets
(:func:`save_preset`, :func:`load_preset`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hmu_core.atomic import write_json
from hmu_core.errors import ConfigError
from hmu_core.motion.skeleton import JOINT_NAMES

__all__ = ["BODY_PARTS", "BUILTIN_MAPS", "REQUIRED", "BoneMap", "check_bone_map",
           "detect_bone_map", "load_preset", "missing_parts", "save_preset"]  # fmt: skip

PRESET_FORMAT = "hmu-bone-map"
PRESET_VERSION = 1

BODY_PARTS: dict[str, tuple[str, ...]] = {
    "hips": ("pelvis",),
    "spine": ("spine1", "spine2", "spine3"),
    "neck and head": ("neck", "head"),
    "left arm": ("left_collar", "left_shoulder", "left_elbow", "left_wrist"),
    "right arm": ("right_collar", "right_shoulder", "right_elbow", "right_wrist"),
    "left leg": ("left_hip", "left_knee", "left_ankle", "left_foot"),
    "right leg": ("right_hip", "right_knee", "right_ankle", "right_foot"),
}
"""The 22 joints grouped as an animator names them (for messages and the panel)."""

REQUIRED: tuple[str, ...] = (
    "pelvis", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle",
    "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip
"""Joints a map must have to carry a motion; the rest (spine bones, neck, head, collars, toes)
may be missing: the bones around them take over (and the report says so)."""
NEEDS_ONE_OF: tuple[tuple[str, ...], ...] = (("spine1", "spine2", "spine3", "neck", "head"),)
"""Groups of which at least one joint must be mapped (something must carry the upper body)."""


def _sided(template: Mapping[str, str]) -> dict[str, str]:
    """Expand ``{joint with '{s}': bone with '{S}'/'{s}'}`` to both sides."""
    out: dict[str, str] = {}
    for joint, bone in template.items():
        if "{side}" not in joint:
            out[joint] = bone
            continue
        for side, short, upper, word in (("left", "l", "L", "Left"), ("right", "r", "R", "Right")):
            out[joint.format(side=side)] = bone.format(s=short, S=upper, Side=word)
    return out


_MIXAMO = _sided({
    "pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck",
    "head": "Head", "{side}_collar": "{Side}Shoulder", "{side}_shoulder": "{Side}Arm",
    "{side}_elbow": "{Side}ForeArm", "{side}_wrist": "{Side}Hand", "{side}_hip": "{Side}UpLeg",
    "{side}_knee": "{Side}Leg", "{side}_ankle": "{Side}Foot", "{side}_foot": "{Side}ToeBase",
})
_RIGIFY = _sided({
    "pelvis": "DEF-spine", "spine1": "DEF-spine.001", "spine2": "DEF-spine.002",
    "spine3": "DEF-spine.003", "neck": "DEF-spine.004", "head": "DEF-spine.006",
    "{side}_collar": "DEF-shoulder.{S}", "{side}_shoulder": "DEF-upper_arm.{S}",
    "{side}_elbow": "DEF-forearm.{S}", "{side}_wrist": "DEF-hand.{S}",
    "{side}_hip": "DEF-thigh.{S}", "{side}_knee": "DEF-shin.{S}", "{side}_ankle": "DEF-foot.{S}",
    "{side}_foot": "DEF-toe.{S}",
})
_RIGIFY_FK = _sided({
    "pelvis": "torso", "spine1": "spine_fk.001", "spine2": "spine_fk.002",
    "spine3": "spine_fk.003", "neck": "neck", "head": "head",
    "{side}_collar": "shoulder.{S}", "{side}_shoulder": "upper_arm_fk.{S}",
    "{side}_elbow": "forearm_fk.{S}", "{side}_wrist": "hand_fk.{S}",
    "{side}_hip": "thigh_fk.{S}", "{side}_knee": "shin_fk.{S}", "{side}_ankle": "foot_fk.{S}",
    "{side}_foot": "toe_fk.{S}",
})
_UE5 = _sided({
    "pelvis": "pelvis", "spine1": "spine_01", "spine2": "spine_03", "spine3": "spine_05",
    "neck": "neck_01", "head": "head", "{side}_collar": "clavicle_{s}",
    "{side}_shoulder": "upperarm_{s}", "{side}_elbow": "lowerarm_{s}", "{side}_wrist": "hand_{s}",
    "{side}_hip": "thigh_{s}", "{side}_knee": "calf_{s}", "{side}_ankle": "foot_{s}",
    "{side}_foot": "ball_{s}",
})
_SMPL = {name: name for name in JOINT_NAMES}
_SMPL_CAPS = _sided({
    "pelvis": "Pelvis", "spine1": "Spine1", "spine2": "Spine2", "spine3": "Spine3",
    "neck": "Neck", "head": "Head", "{side}_collar": "{S}_Collar",
    "{side}_shoulder": "{S}_Shoulder", "{side}_elbow": "{S}_Elbow", "{side}_wrist": "{S}_Wrist",
    "{side}_hip": "{S}_Hip", "{side}_knee": "{S}_Knee", "{side}_ankle": "{S}_Ankle",
    "{side}_foot": "{S}_Foot",
})

BUILTIN_MAPS: dict[str, dict[str, str]] = {
    "mixamo": _MIXAMO, "rigify_fk": _RIGIFY_FK, "rigify": _RIGIFY, "ue5": _UE5, "smpl": _SMPL,
    "smpl_caps": _SMPL_CAPS,
}
"""Built-in maps by convention name (Mixamo names without their ``mixamorig:`` prefix), in
the order detection tries them: a generated Rigify rig has both FK controls and DEF bones,
and its DEF bones follow the controls through constraints, so the controls come first."""
_UE4_SPINE = {"spine1": "spine_01", "spine2": "spine_02", "spine3": "spine_03"}
"""UE4's mannequin has three spine bones where UE5's has five."""
_MIXAMO_PREFIX = re.compile(r"^mixamorig\d*:")


@dataclass(frozen=True)
class BoneMap:
    """A bone map and where it came from.

    Attributes:
        bones: ``{smpl joint: bone name}``.
        source: ``"mixamo"`` etc. for a built-in map, ``"detected"``, ``"preset"`` or
            ``"user"``.
    """

    bones: dict[str, str]
    source: str

    def missing(self) -> dict[str, list[str]]:
        """Body part -> its joints that have no bone (parts that are complete are left out)."""
        return missing_parts(self.bones)


def missing_parts(bones: Mapping[str, str]) -> dict[str, list[str]]:
    """Body part -> the joints of that part with no bone in ``bones``."""
    out = {}
    for part, joints in BODY_PARTS.items():
        gone = [j for j in joints if not bones.get(j)]
        if gone:
            out[part] = gone
    return out


def check_bone_map(bones: Mapping[str, str], bone_names: Sequence[str],
                   parents: Sequence[int] | None = None) -> dict[str, str]:
    """Validate a map against an armature; return it without empty entries.

    Args:
        bones: ``{smpl joint: bone name}`` (empty names mean "not mapped").
        bone_names: the armature's bone names.
        parents: each bone's parent index (-1 for a root); when given, every mapped bone must
            be below the hips bone and the limb bones nested (``LIMB_CHAINS``).
    Raises:
        ConfigError: unknown joint or bone names, a bone used twice, missing required body
            parts (named, with their joints), or a hierarchy that contradicts the skeleton.
    """
    clean = {j: b for j, b in bones.items() if b}
    unknown = sorted(set(clean) - set(JOINT_NAMES))
    if unknown:
        raise ConfigError(f"bone map: unknown SMPL joint(s) {unknown}; use {list(JOINT_NAMES)}")
    names = list(bone_names)
    absent = sorted(b for b in clean.values() if b not in names)
    if absent:
        raise ConfigError(f"bone map: bone(s) {absent} are not in the armature; fix the map")
    used: dict[str, str] = {}
    for joint, bone in clean.items():
        if bone in used:
            raise ConfigError(f"bone map: bone {bone!r} is mapped to both {used[bone]} and "
                              f"{joint}; one bone can play one joint")
        used[bone] = joint
    gaps = [j for j in REQUIRED if j not in clean]
    gaps += [f"one of {'/'.join(g)}" for g in NEEDS_ONE_OF if not any(j in clean for j in g)]
    if gaps:
        parts = missing_parts(clean)
        where = "; ".join(f"{part}: {', '.join(js)}" for part, js in parts.items())
        raise ConfigError(f"the armature cannot be mapped to a human body: no bone for "
                          f"{', '.join(gaps)} (missing by body part - {where}); pick the bones "
                          f"in the bone map or load a preset")
    if parents is not None:
        _check_hierarchy(clean, names, list(parents))
    return clean


LIMB_CHAINS: tuple[tuple[str, str], ...] = tuple(
    (f"{side}_{upper}", f"{side}_{lower}") for side in ("left", "right")
    for upper, lower in (("hip", "knee"), ("knee", "ankle"), ("ankle", "foot"),
                         ("shoulder", "elbow"), ("elbow", "wrist")))
"""(upper, lower) joints whose bones must nest: a swapped knee and ankle is a mistake. Other
links are not required to nest (a control rig parents its FK spine and collars to helpers)."""


def _below(bone: int, ancestor: int, parents: list[int]) -> bool:
    k = parents[bone]
    while k >= 0 and k != ancestor:
        k = parents[k]
    return k == ancestor


def _check_hierarchy(bones: dict[str, str], names: list[str], parents: list[int]) -> None:
    """Every mapped bone below the hips bone (it carries the body), limb bones nested."""
    index = {n: i for i, n in enumerate(names)}
    pelvis = index[bones["pelvis"]]
    for joint, bone in bones.items():
        if joint != "pelvis" and not _below(index[bone], pelvis, parents):
            raise ConfigError(f"bone map: {bone!r} ({joint}) is not below the hips bone "
                              f"{names[pelvis]!r} in the armature, so it would not move with "
                              f"the body; fix the map")
    for upper, lower in LIMB_CHAINS:
        if upper in bones and lower in bones and \
                not _below(index[bones[lower]], index[bones[upper]], parents):
            raise ConfigError(f"bone map: {bones[lower]!r} ({lower}) is not below "
                              f"{bones[upper]!r} ({upper}) in the armature; the map must "
                              f"follow the skeleton's hierarchy")


def _builtin_for(names: Sequence[str]) -> BoneMap | None:
    """The built-in map whose required bones all exist (the Mixamo prefix as found)."""
    present = set(names)
    prefix = ""
    for n in names:
        m = _MIXAMO_PREFIX.match(n)
        if m:
            prefix = m.group(0)
            break
    for key, table in BUILTIN_MAPS.items():
        pre = prefix if key == "mixamo" else ""
        table = {j: pre + b for j, b in table.items()}
        if key == "ue5" and "spine_05" not in present:
            table.update(_UE4_SPINE)
        if all(table[j] in present for j in REQUIRED):
            bones = {j: b for j, b in table.items() if b in present}
            return BoneMap(bones=bones, source=key)
    return None


# -- detection for other humanoids -------------------------------------------------------------

_SIDE_PATTERNS = (
    (re.compile(r"(^|[^a-z])(left)([^a-z]|$)|^l[_.\- ]|[_.\- ]l$|[_.\-]l[_.\-]"), "left"),
    (re.compile(r"(^|[^a-z])(right)([^a-z]|$)|^r[_.\- ]|[_.\- ]r$|[_.\-]r[_.\-]"), "right"),
)
_KEYWORDS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    # (joint without side, words that name it, words that rule it out), first match wins.
    ("foot", ("toe", "toes", "ball", "toebase"), ("end", "tip", "nub")),
    ("ankle", ("foot", "ankle"), ("end", "tip", "nub", "ik", "target", "pole")),
    ("knee", ("calf", "shin", "knee", "lowerleg", "leg"), ("up", "upper", "upleg", "ik", "pole",
                                                         "twist", "roll")),
    ("hip", ("thigh", "upleg", "upperleg", "hip"), ("twist", "roll", "ik")),
    ("wrist", ("hand", "wrist"), ("end", "tip", "ik", "index", "thumb", "middle", "ring",
                                  "pinky", "finger")),
    ("elbow", ("forearm", "lowerarm", "elbow"), ("twist", "roll", "ik")),
    ("shoulder", ("upperarm", "arm"), ("fore", "lower", "twist", "roll", "ik")),
    ("collar", ("clavicle", "collar", "shoulder"), ()),
)
_CENTRE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("head", ("head",)),
    ("neck", ("neck",)),
    ("pelvis", ("hips", "hip", "pelvis")),
)


def _words(name: str) -> tuple[list[str], str | None]:
    """Lower-case words of a bone name without namespace/DEF-style prefixes, and its side."""
    base = name.split(":")[-1]
    base = re.sub(r"^(def|org|mch|drv|jnt|bn|b|bip\d*|cc_base)[-_ .]", "", base, flags=re.I)
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", base).lower()
    side = None
    for pattern, which in _SIDE_PATTERNS:
        if pattern.search(spaced):
            side = which
            break
    words = [w for w in re.split(r"[^a-z]+", spaced) if w and w not in ("l", "r", "left",
                                                                          "right")]
    return words, side


def _has(words: list[str], keys: tuple[str, ...]) -> bool:
    joined = "".join(words)
    return any(k in words or (len(k) > 4 and k in joined) for k in keys)


def detect_bone_map(bone_names: Sequence[str], parents: Sequence[int]) -> BoneMap:
    """A map for an armature: a built-in one if its bones are all there, else detected.

    Detection: each bone's words and side (``_words``) are matched to a joint by keyword; the
    first bone (in hierarchy order) wins each joint. The spine bones are the chain from the
    pelvis bone to the neck's (or the collars' common) parent, shared out as spine1 (the first),
    spine3 (the last) and spine2 (the middle one). The result may be incomplete:
    :func:`check_bone_map` says what is missing.

    Args:
        bone_names: the armature's bone names, parents before children (Blender's order).
        parents: each bone's parent index, -1 for roots.
    """
    names = list(bone_names)
    parents = list(parents)
    if len(parents) != len(names):
        raise ConfigError(f"detect_bone_map: {len(names)} names but {len(parents)} parents")
    found = _builtin_for(names)
    if found is not None:
        return found
    bones: dict[str, str] = {}
    for name in names:
        words, side = _words(name)
        if side is None:
            for joint, keys in _CENTRE:
                if joint not in bones and _has(words, keys):
                    bones[joint] = name
                    break
            continue
        for joint, keys, veto in _KEYWORDS:
            key = f"{side}_{joint}"
            if key in bones or not _has(words, keys) or _has(words, veto):
                continue
            bones[key] = name
            break
    _fix_arm_chain(bones, names, parents)
    _share_spine(bones, names, parents)
    return BoneMap(bones=bones, source="detected")


def _fix_arm_chain(bones: dict[str, str], names: list[str], parents: list[int]) -> None:
    """A 'Shoulder' bone is taken for the collar; when a side then has no upper arm and that
    bone is above the forearm, it was the upper arm (a rig without clavicles)."""
    index = {n: i for i, n in enumerate(names)}
    for side in ("left", "right"):
        collar, elbow = bones.get(f"{side}_collar"), bones.get(f"{side}_elbow")
        if f"{side}_shoulder" in bones or collar is None or elbow is None:
            continue
        k = parents[index[elbow]]
        while k >= 0 and names[k] != collar:
            k = parents[k]
        if k >= 0:
            bones[f"{side}_shoulder"] = bones.pop(f"{side}_collar")


def _share_spine(bones: dict[str, str], names: list[str], parents: list[int]) -> None:
    """Map spine1..3 onto the chain strictly between the pelvis bone and the neck's parent."""
    if "pelvis" not in bones or any(f"spine{k}" in bones for k in (1, 2, 3)):
        return
    top = bones.get("neck") or bones.get("head") or bones.get("left_collar")
    if top is None:
        return
    index = {n: i for i, n in enumerate(names)}
    chain = []
    k = parents[index[top]]
    pelvis = index[bones["pelvis"]]
    while k >= 0 and k != pelvis:
        chain.append(k)
        k = parents[k]
    if k != pelvis:
        return
    chain.reverse()  # from the pelvis upwards
    picks = {1: chain[:1], 3: chain[-1:], 2: chain[len(chain) // 2: len(chain) // 2 + 1]}
    used: set[int] = set()
    for level in (1, 3, 2):
        for k in picks[level]:
            if k not in used:
                bones[f"spine{level}"] = names[k]
                used.add(k)


# -- presets -----------------------------------------------------------------------------------


def save_preset(path: str | Path, bone_map: Mapping[str, str], name: str = "") -> Path:
    """Write a map as a JSON preset (atomically): ``{"format", "version", "name", "bones"}``."""
    bones = {j: b for j, b in bone_map.items() if b}
    unknown = sorted(set(bones) - set(JOINT_NAMES))
    if unknown:
        raise ConfigError(f"bone map: unknown SMPL joint(s) {unknown}")
    path = Path(path)
    write_json(path, {"format": PRESET_FORMAT, "version": PRESET_VERSION, "name": name,
                      "bones": {j: bones[j] for j in JOINT_NAMES if j in bones}})
    return path


def load_preset(path: str | Path) -> BoneMap:
    """Read a JSON preset written by :func:`save_preset` (or by hand, same layout).

    Raises:
        ConfigError: unreadable file, not JSON, wrong format or version, bad entries.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"bone map preset {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"bone map preset {path}: not JSON ({exc.msg}, line {exc.lineno})") \
            from None
    if not isinstance(data, dict) or data.get("format") != PRESET_FORMAT:
        raise ConfigError(f"bone map preset {path}: not an hmu bone map (format must be "
                          f"{PRESET_FORMAT!r})")
    if data.get("version") != PRESET_VERSION:
        raise ConfigError(f"bone map preset {path}: version {data.get('version')!r}, this hmu "
                          f"reads version {PRESET_VERSION}")
    bones = data.get("bones")
    if not isinstance(bones, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in bones.items()):
        raise ConfigError(f"bone map preset {path}: 'bones' must map joint names to bone names")
    unknown = sorted(set(bones) - set(JOINT_NAMES))
    if unknown:
        raise ConfigError(f"bone map preset {path}: unknown SMPL joint(s) {unknown}")
    return BoneMap(bones=dict(bones), source="preset")
