"""Bone maps: built-in conventions, detection on other humanoids, checks, presets."""

from __future__ import annotations

import json

import pytest

from hmu_core.errors import ConfigError
from hmu_core.motion.bone_maps import (
    BUILTIN_MAPS,
    check_bone_map,
    detect_bone_map,
    load_preset,
    save_preset,
)
from hmu_core.motion.skeleton import JOINT_NAMES
from tests.motion.rig_builders import BUILDERS


def _tree(bones: list[tuple[str, str | None]]) -> tuple[list[str], list[int]]:
    names = [b for b, _ in bones]
    return names, [names.index(p) if p else -1 for _, p in bones]


def test_every_builtin_map_covers_the_22_joints():
    for name, table in BUILTIN_MAPS.items():
        assert set(table) == set(JOINT_NAMES), name
        assert len(set(table.values())) == 22, name


def test_mixamo_prefix_variants_and_ue4_spine():
    for prefix in ("mixamorig:", "mixamorig12:", ""):
        rig = BUILDERS["mixamo"]().rest()
        names = [n.replace("mixamorig:", prefix) for n in rig.names]
        found = detect_bone_map(names, rig.parents)
        assert found.source == "mixamo" and found.bones["left_hip"] == f"{prefix}LeftUpLeg"
    rig = BUILDERS["ue5"]().rest()
    names = [n for n in rig.names if n not in ("spine_04", "spine_05")]
    keep = [rig.names.index(n) for n in names]
    parents = []
    for i in keep:  # re-parent spine_05's children onto spine_03
        p = rig.parents[i]
        while p >= 0 and rig.names[p] in ("spine_04", "spine_05"):
            p = rig.parents[p]
        parents.append(keep.index(p) if p >= 0 else -1)
    found = detect_bone_map(names, parents)
    assert found.source == "ue5"
    assert [found.bones[f"spine{k}"] for k in (1, 2, 3)] == ["spine_01", "spine_02", "spine_03"]


def test_detects_an_unknown_humanoid_from_names_and_hierarchy():
    """A game-style rig: Bip-like names, sides as suffixes, four spine bones, no collars."""
    bones = [("Root", None), ("Hips", "Root"), ("Spine_A", "Hips"), ("Spine_B", "Spine_A"),
             ("Spine_C", "Spine_B"), ("Spine_D", "Spine_C"), ("Neck", "Spine_D"),
             ("Head", "Neck"), ("Head_end", "Head")]
    for s in ("L", "R"):
        bones += [(f"Shoulder_{s}", "Spine_D"), (f"Elbow_{s}", f"Shoulder_{s}"),
                  (f"Hand_{s}", f"Elbow_{s}"), (f"Index1_{s}", f"Hand_{s}"),
                  (f"Thigh_{s}", "Hips"), (f"Thigh_twist_{s}", f"Thigh_{s}"),
                  (f"Calf_{s}", f"Thigh_{s}"), (f"Foot_{s}", f"Calf_{s}"),
                  (f"Toe_{s}", f"Foot_{s}"), (f"Toe_end_{s}", f"Toe_{s}"),
                  (f"IK_Foot_{s}", "Root")]
    names, parents = _tree(bones)
    found = detect_bone_map(names, parents)
    assert found.source == "detected"
    want = {"pelvis": "Hips", "spine1": "Spine_A", "spine2": "Spine_C", "spine3": "Spine_D",
            "neck": "Neck", "head": "Head", "left_shoulder": "Shoulder_L",
            "left_elbow": "Elbow_L", "left_wrist": "Hand_L", "right_hip": "Thigh_R",
            "right_knee": "Calf_R", "right_ankle": "Foot_R", "right_foot": "Toe_R"}
    assert {k: found.bones.get(k) for k in want} == want
    assert found.missing() == {"left arm": ["left_collar"], "right arm": ["right_collar"]}
    assert check_bone_map(found.bones, names, parents) == found.bones


def test_check_names_what_is_wrong():
    rig = BUILDERS["smpl"]().rest()
    bones = dict(BUILTIN_MAPS["smpl"])
    with pytest.raises(ConfigError, match="unknown SMPL joint"):
        check_bone_map({**bones, "tail": "pelvis"}, rig.names)
    with pytest.raises(ConfigError, match="not in the armature"):
        check_bone_map({**bones, "head": "Head"}, rig.names)
    with pytest.raises(ConfigError, match="mapped to both"):
        check_bone_map({**bones, "neck": "head"}, rig.names)
    legless = {k: v for k, v in bones.items() if "knee" not in k}
    with pytest.raises(ConfigError, match=r"no bone for left_knee, right_knee.*left leg"):
        check_bone_map(legless, rig.names)
    swapped = {**bones, "left_knee": "left_ankle", "left_ankle": "left_knee"}
    with pytest.raises(ConfigError, match="hierarchy"):
        check_bone_map(swapped, rig.names, rig.parents)
    assert check_bone_map({**bones, "spine2": ""}, rig.names, rig.parents) == \
        {k: v for k, v in bones.items() if k != "spine2"}


def test_preset_round_trip_and_bad_files(tmp_path):
    rig = BUILDERS["rigify"]().rest()
    found = detect_bone_map(rig.names, rig.parents)
    path = save_preset(tmp_path / "studio.json", found.bones, name="studio hero")
    loaded = load_preset(path)
    assert loaded.bones == found.bones and loaded.source == "preset"
    assert json.loads(path.read_text())["name"] == "studio hero"
    bad = tmp_path / "bad.json"
    for text, match in (("{", "not JSON"), ('{"format": "x"}', "not an hmu bone map"),
                        ('{"format": "hmu-bone-map", "version": 9, "bones": {}}', "version 9"),
                        ('{"format": "hmu-bone-map", "version": 1, "bones": {"tail": "x"}}',
                         "unknown SMPL joint")):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=match):
            load_preset(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_preset(tmp_path / "missing.json")
