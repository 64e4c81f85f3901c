"""The add-on from the source tree: registration, UI contract, every operator's execute path."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="needs the bpy module")

pytestmark = pytest.mark.blender

OPERATORS = ("generate", "test_bundle", "build_rig", "generate_library", "render_eval",
             "detect_bone_map", "save_bone_map", "load_bone_map", "use_variation")


def _counts() -> dict[str, int]:
    return {k: len(getattr(bpy.data, k)) for k in ("objects", "actions", "armatures", "meshes")}


def _clip(rig, track: int = -1):
    """The action of the (last) NLA track's strip: where Generate puts each clip."""
    return rig.animation_data.nla_tracks[track].strips[0].action


def test_registers_operators_panels_and_tooltips(addon):
    for name in OPERATORS:
        op = getattr(bpy.ops.hmu, name)
        assert op.get_rna_type().description.strip(), f"hmu.{name} has no tooltip"
    subpanels = [bpy.types.HMU_PT_model, bpy.types.HMU_PT_retarget, bpy.types.HMU_PT_library,
                 bpy.types.HMU_PT_render]
    assert all("DEFAULT_CLOSED" in p.bl_options for p in subpanels)
    assert bpy.types.HMU_PT_main.bl_category == "hmu"


def test_poll_greys_out_without_a_bundle(scene):
    bpy.context.preferences.addons["blender_addon"].preferences.bundle_path = ""
    assert not bpy.ops.hmu.generate.poll()
    assert not bpy.ops.hmu.test_bundle.poll()
    with pytest.raises(RuntimeError, match="poll"):
        bpy.ops.hmu.generate()


def test_generate_builds_rig_and_keys_runtime_joints(scene, default_bundle):
    from exporter.runtime import Generator
    from exporter.scene.rig import world_joints
    from hmu_core.motion.foot_contact import clean_feet

    scene.render.fps = 24  # the model's 20 fps is mapped onto scene time, fps kept
    scene.frame_set(10)
    props = scene.hmu
    props.prompt, props.seed = "a person walks forward", 3
    props.frames = 48  # duration in scene frames: 2 s at 24 fps
    assert props.seconds == pytest.approx(2.0)
    assert bpy.ops.hmu.generate() == {"FINISHED"}
    rig = props.target
    assert rig is not None and rig.type == "ARMATURE" and len(rig.data.bones) == 24
    assert any(child.type == "MESH" for child in rig.children), "no visible body"
    action = _clip(rig)
    assert rig.animation_data.action is None and not action.use_fake_user
    assert rig.animation_data.nla_tracks[0].strips[0].frame_start == 10
    assert props.seed == 4  # the next click makes a new motion
    assert action.name == "hmu_a_person_walks_forward_s3"
    assert action["hmu_prompt"] == "a person walks forward" and action["hmu_seed"] == 3
    assert len(action["hmu_bundle_sha256"]) == 64 and action["hmu_unlearning"] == "null"
    assert scene.render.fps == 24
    assert action.frame_range[0] == pytest.approx(10.0)

    motion = Generator(default_bundle, device="cpu", threads=1).generate(
        ["a person walks forward"], seconds=2.0, seeds=[3]).motions[0]
    frames = 10 + np.arange(motion.num_frames) * 24 / 20
    got = world_joints(rig, frames, scene)
    # The runtime's joints as SMPL rotations (hmu_core.motion's IK, what any rig can carry:
    # the raw joints of this tiny model stretch their bones) with planted feet (the clean-up
    # is on by default), then Blender's Z-up world: SMPL (x, y, z) -> (x, -z, y). The rig
    # stands on the floor: its root is lifted by the rest skeleton's lowest joint, which the
    # keyed root location undoes.
    want = clean_feet(motion).smpl_pose().joints()[..., [0, 2, 1]] * np.array([1.0, -1.0, 1.0])
    assert np.abs(got - want).max() < 0.01
    assert got[:, [7, 8, 10, 11], 2].min() >= -1e-4, "a foot below the floor"


def test_variations_are_muted_tracks_and_a_locked_seed_reuses_its_action(scene):
    props = scene.hmu
    props.prompt, props.seconds, props.seed, props.variations = "wave", 2.0, 0, 2
    assert bpy.ops.hmu.generate() == {"FINISHED"}
    rig = props.target
    tracks = rig.animation_data.nla_tracks
    assert [(t.name, t.mute) for t in tracks] == [("hmu_wave_s0", False), ("hmu_wave_s1", True)]
    assert sorted(bpy.data.actions.keys()) == ["hmu_wave_s0", "hmu_wave_s1"]
    assert not any(a.use_fake_user for a in bpy.data.actions)
    assert props.seed == 2
    drawn = _Layout()  # the chooser under Generate: one button per variation
    bpy.types.HMU_PT_main.draw(SimpleNamespace(layout=drawn), bpy.context)
    assert drawn.operators[-2:] == ["hmu.use_variation"] * 2
    assert "Variations at frame 1:" in drawn.labels and drawn.labels[-2:] == ["seed 0", "seed 1"]
    assert bpy.ops.hmu.use_variation(track="hmu_wave_s1") == {"FINISHED"}
    assert [t.mute for t in tracks] == [True, False]
    props.variations = 1
    bpy.ops.hmu.generate()  # seed 2: a new motion
    assert "hmu_wave_s2" in bpy.data.actions and props.seed == 3
    props.seed_lock = True
    bpy.ops.hmu.generate()  # seed 3, then the same again: one action, two strips
    bpy.ops.hmu.generate()
    assert props.seed == 3 and len(bpy.data.actions) == 4
    assert "hmu_wave_s3.001" not in bpy.data.actions
    assert bpy.data.actions["hmu_wave_s3"].users == 2
    assert len(tracks) == 5


def test_undo_removes_a_generation(scene):
    bpy.ops.hmu.build_rig()
    before = _counts()
    bpy.ops.ed.undo_push(message="before")
    scene.hmu.seconds = 2.0
    assert bpy.ops.hmu.generate() == {"FINISHED"}
    bpy.ops.ed.undo_push(message="hmu: Generate")
    assert len(bpy.data.actions) == before["actions"] + 1
    bpy.ops.ed.undo()
    assert _counts() == before


def test_bad_bundle_reports_error_and_leaves_scene(scene, tmp_path, default_bundle):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(default_bundle, broken)
    with open(broken / "decoder.onnx", "r+b") as fh:
        fh.truncate(1000)
    bpy.context.preferences.addons["blender_addon"].preferences.bundle_path = str(broken)
    before = _counts()
    with pytest.raises(RuntimeError, match=r"decoder\.onnx"):
        bpy.ops.hmu.generate()
    assert _counts() == before
    job = bpy.context.window_manager.hmu_job
    assert job.status.startswith("Error:") and not job.running


def test_test_bundle_reports_the_real_provider(scene):
    from blender_addon import runtime_cache

    assert bpy.ops.hmu.test_bundle() == {"FINISHED"}
    assert bpy.context.window_manager.hmu_job.status.startswith("Bundle OK: CPU")
    assert runtime_cache.last_session.provider == "CPUExecutionProvider"
    assert runtime_cache.last_session.reason == "cpu requested"


class _Layout:
    """Stands in for ``UILayout`` (background mode draws nothing): checks that every property
    and operator a panel names exists, and records the labels."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.operators: list[str] = []

    def prop(self, data, name, **_kw):
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no {name}"

    def operator(self, idname, **kw):
        group, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, group), name), idname
        self.operators.append(idname)
        self.labels.append(kw.get("text", ""))
        return SimpleNamespace()  # the button's operator properties

    def label(self, text="", **_kw):
        self.labels.append(text)

    def progress(self, **_kw):
        self.labels.append(_kw.get("text", ""))

    def row(self, **_kw):
        return self

    def prop_search(self, data, name, search_data, search_name, **_kw):
        self.prop(data, name)
        assert search_name in search_data.bl_rna.properties

    def template_list(self, list_type, _list_id, data, name, active_data, active_name, **_kw):
        assert hasattr(bpy.types, list_type), list_type
        self.prop(data, name)
        self.prop(active_data, active_name)

    column = box = row


def test_panels_draw_with_existing_properties_and_operators(scene):
    drawn = _Layout()
    for panel in (bpy.types.HMU_PT_main, bpy.types.HMU_PT_model, bpy.types.HMU_PT_retarget,
                  bpy.types.HMU_PT_library, bpy.types.HMU_PT_render):
        panel.draw(type("Panel", (), {"layout": drawn})(), bpy.context)
    scene.hmu.library_mode = "FILES"
    bpy.types.HMU_PT_library.draw(type("Panel", (), {"layout": drawn})(), bpy.context)
    assert drawn.operators == ["hmu.generate", "hmu.bundle_add", "hmu.bundle_remove",
                               "hmu.test_bundle", "hmu.build_rig",
                               "hmu.generate_library", "hmu.render_eval",
                               "hmu.generate_library"]
    assert "Ready" in drawn.labels
    assert not bpy.types.HMU_PT_bone_map.poll(bpy.context)  # no Target, no bone map
    assert any(label.startswith("Model frames: 80 at 20 fps") for label in drawn.labels)


def test_trusted_keys_preference_locks_generate_to_signed_bundles(scene, tmp_path, default_bundle):
    import json
    import shutil

    from exporter.runtime import read_bundle
    from exporter.signing import generate_keypair, sign_bundle

    key, public, _ = generate_keypair(tmp_path / "studio")
    signed = tmp_path / "signed"
    shutil.copytree(default_bundle, signed)
    sign_bundle(signed, key)
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.trusted_keys = str(public)
    try:
        before = _counts()
        with pytest.raises(RuntimeError, match="not signed, and trusted keys are configured"):
            bpy.ops.hmu.generate()  # the unsigned tiny bundle
        assert _counts() == before
        prefs.bundle_path = str(signed)
        assert bpy.ops.hmu.generate() == {"FINISHED"}
        action = _clip(scene.hmu.target)
        assert action["hmu_bundle_sha256"] == read_bundle(signed).digest
        manifest = json.loads((signed / "manifest.json").read_text())
        manifest["unlearning"] = {"method": "none"}  # a record edited after signing
        (signed / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(RuntimeError, match="changed after signing"):
            bpy.ops.hmu.generate()
    finally:
        prefs.trusted_keys = ""


def _mixamo(name: str = "Hero", legs: bool = True):
    from tests.motion.rig_builders import BUILDERS, build_in_blender

    spec = BUILDERS["mixamo"]()
    if not legs:
        spec = type(spec)(spec.name, tuple(b for b in spec.bones if not any(
            k in b[0] for k in ("Leg", "Foot", "Toe"))), spec.matrix_world)
    return build_in_blender(spec, name)


def test_generate_on_a_mixamo_character(scene):
    """Fresh scene, a Mixamo-named character picked as Target: the map is shown before the
    model runs, Generate bakes a new action onto the character, one undo removes it."""
    from exporter.scene.retarget import world_heads

    hero = _mixamo()
    props = scene.hmu
    props.target = hero
    assert props.bone_map_source == "mixamo" and props.bone_map_for == "Hero"
    rows = {row.joint: row.bone for row in props.bone_map}
    assert rows["left_hip"] == "mixamorig:LeftUpLeg" and len(rows) == 22
    drawn = _Layout()
    assert bpy.types.HMU_PT_bone_map.poll(bpy.context)
    bpy.types.HMU_PT_bone_map.draw(type("Panel", (), {"layout": drawn})(), bpy.context)
    assert "Bone map: Mixamo, 22 of 22 joints" in drawn.labels
    assert drawn.operators == ["hmu.detect_bone_map", "hmu.load_bone_map", "hmu.save_bone_map"]

    before = _counts()
    bpy.ops.ed.undo_push(message="before")
    props.prompt, props.seconds, props.seed = "a person walks forward", 2.0, 1
    assert bpy.ops.hmu.generate() == {"FINISHED"}
    assert props.target == hero and len(bpy.data.armatures) == before["armatures"]
    action = _clip(hero)
    assert action.name == "hmu_a_person_walks_forward_s1"
    assert json.loads(action["hmu_bone_map"])["pelvis"] == "mixamorig:Hips"
    assert action["hmu_bone_map_source"] == "mixamo" and action["hmu_foot_cleanup"] is True
    assert len(action["hmu_bundle_sha256"]) == 64
    # The character moves: its hips travel and its feet stay above its floor.
    heads = world_heads(hero, ["mixamorig:Hips", "mixamorig:LeftToeBase",
                               "mixamorig:RightToeBase"], [1.0, 20.0, 40.0], scene)
    assert np.linalg.norm(heads[-1, 0] - heads[0, 0]) > 0.05
    assert heads[:, 1:, 2].min() >= 0.015 - 1e-4  # the toes' rest height: 1.5 cm
    bpy.ops.ed.undo_push(message="hmu: Generate")
    bpy.ops.ed.undo()
    assert _counts() == before


def test_unmappable_target_is_refused_before_the_model_runs(scene, tmp_path):
    props = scene.hmu
    props.target = _mixamo("Torso", legs=False)
    drawn = _Layout()
    bpy.types.HMU_PT_bone_map.draw(type("Panel", (), {"layout": drawn})(), bpy.context)
    assert any(label.startswith("Generate refuses this target: Torso: the armature cannot be "
                                "mapped") for label in drawn.labels)
    assert "left leg: no left_hip, left_knee, left_ankle, left_foot" in drawn.labels
    # A bundle that cannot load: the map's error comes first, so the model never ran.
    bpy.context.preferences.addons["blender_addon"].preferences.bundle_path = str(tmp_path)
    before = _counts()
    with pytest.raises(RuntimeError, match=r"Torso: the armature cannot be mapped.*left leg"):
        bpy.ops.hmu.generate()
    assert _counts() == before
    assert bpy.context.window_manager.hmu_job.status.startswith("Error: Torso")


def test_bone_map_edits_presets_and_off_switch(scene, tmp_path):
    props = scene.hmu
    hero = _mixamo()
    props.target = hero
    row = next(r for r in props.bone_map if r.joint == "left_collar")
    row.bone = ""  # the user leaves the clavicle out
    assert props.bone_map_source == "user"
    preset = tmp_path / "hero.json"
    assert bpy.ops.hmu.save_bone_map(filepath=str(preset)) == {"FINISHED"}
    assert "left_collar" not in json.loads(preset.read_text())["bones"]
    assert bpy.ops.hmu.detect_bone_map() == {"FINISHED"}
    assert props.bone_map_source == "mixamo"
    assert bpy.ops.hmu.load_bone_map(filepath=str(preset)) == {"FINISHED"}
    assert props.bone_map_source == "preset"
    props.foot_cleanup = False
    props.seconds = 2.0
    assert bpy.ops.hmu.generate() == {"FINISHED"}
    action = _clip(hero)
    assert action["hmu_foot_cleanup"] is False and action["hmu_bone_map_source"] == "preset"
    assert "left_collar" not in json.loads(action["hmu_bone_map"])
