"""The preferences' bundle list (built-in plus the user's, one active) and the unlearning record
in words, as the Model and Runtime panel shows it."""

from __future__ import annotations

import json
import os
import shutil

import bpy
import pytest

from blender_addon import bundles
from hmu_core.assets import DEFAULT_UNLEARNING


class _Labels:
    """Stands in for ``UILayout``: records the labels and their icons."""

    def __init__(self) -> None:
        self.labels: list[tuple[str, str]] = []

    def label(self, text: str = "", icon: str = "NONE") -> None:
        self.labels.append((text, icon))

    def box(self, **_kw) -> _Labels:
        return self

    column = row = box


def _prefs():
    return bpy.context.preferences.addons["blender_addon"].preferences


def test_suppression_record_in_words():
    record = json.loads(DEFAULT_UNLEARNING.read_text(encoding="utf-8"))
    info = bundles.describe(record)
    assert info.status == "unlearned" and info.title == "Unlearned: violence_motionx"
    assert info.lines[0].startswith("Keywords: kick, punch, hit, beat, boxe, boxing, jab")
    assert info.lines[1] == "Method: latent code suppression"
    assert info.lines[2] == ("Strength: 128 motion codes on 4 layers can never be generated "
                             "(r 32 per layer), chosen from dataset motions")
    assert info.lines[3] == ("Data: 204 clips of the concept among 2,550 (hmu's synthetic "
                             "small set, seed 0, generator version 2)")


def test_other_methods_and_no_record_in_words():
    lcr = bundles.describe({"method": "lcr", "concepts": [{"name": "kick", "keywords": ["kick"],
                                                           "r": 16}],
                            "parameters": {"r": 16}, "results": {"removed_codes": [3, 5, 9]}})
    assert lcr.title == "Unlearned: kick"
    assert lcr.lines == ("Keywords: kick", "Method: latent code replacement (LCR)",
                         "Strength: r 16: 3 motion codes replaced by a safe code")
    uce = bundles.describe({"method": "uce", "concepts": [{"name": "a"}, {"name": "b"}],
                            "parameters": {"erase_scale": 0.1, "lamb": 0.1, "seed": 0}})
    assert uce.title == "Unlearned: a, b"
    assert uce.lines == ("Method: unified concept editing (UCE)",
                         "Strength: erase scale 0.1, lamb 0.1")
    none = bundles.describe(None)
    assert none.status == "original" and none.title == "Not unlearned"
    assert "can make every motion it was trained on" in none.lines[0]


def test_bundle_info_reads_the_manifest_and_follows_its_changes(tmp_path, default_bundle):
    bundle = tmp_path / "b"
    shutil.copytree(default_bundle, bundle)
    assert bundles.bundle_info(bundle).title == "Not unlearned"  # the default model, as is
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["unlearning"] = json.loads(DEFAULT_UNLEARNING.read_text(encoding="utf-8"))
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    os.utime(bundle / "manifest.json", (1, 1))  # a new mtime, however fast the test runs
    assert bundles.bundle_info(bundle).title == "Unlearned: violence_motionx"
    missing = bundles.bundle_info(tmp_path / "nowhere")
    assert missing.status == "missing" and "hmu export" in missing.lines[0]


def test_bundle_list_adds_activates_and_keeps_the_builtin_one(scene, tmp_path, default_bundle):
    prefs = _prefs()
    prefs.bundles.clear()
    prefs.active_bundle = 0
    # a source checkout has no built-in bundle; a built zip has (test_extension_zip)
    assert bundles.builtin_bundle() is None and prefs.bundle_path == ""
    other = tmp_path / "other"
    shutil.copytree(default_bundle, other)
    prefs.bundle_path = str(default_bundle)
    prefs.bundle_path = str(other)
    prefs.bundle_path = str(default_bundle)  # already listed: activated, not added again
    assert [(b.name, b.builtin) for b in prefs.bundles] == [
        ("Built-in safe model", True), (default_bundle.name, False), ("other", False)]
    assert prefs.active_bundle == 1 and prefs.bundle_path == str(default_bundle)
    prefs.active_bundle = 2
    assert prefs.bundle_path == str(other)
    assert bpy.ops.hmu.bundle_remove() == {"FINISHED"}
    assert [b.name for b in prefs.bundles] == ["Built-in safe model", default_bundle.name]
    assert prefs.bundle_path == str(default_bundle)
    prefs.active_bundle = 0
    assert not bpy.ops.hmu.bundle_remove.poll()  # the built-in one stays
    with pytest.raises(RuntimeError, match=r"no manifest\.json"):
        bpy.ops.hmu.bundle_add(directory=str(tmp_path))
    assert bpy.ops.hmu.bundle_add(directory=str(other)) == {"FINISHED"}
    assert prefs.bundle_path == str(other) and prefs.active_bundle == 2


def test_panel_shows_the_active_bundles_record(scene, tmp_path, default_bundle):
    from blender_addon.panels import draw_unlearning

    drawn = _Labels()
    draw_unlearning(drawn, str(default_bundle))
    assert drawn.labels[0] == ("Not unlearned", "ERROR")
    assert all(len(text) <= 46 for text, _ in drawn.labels)  # wrapped for the N-panel
    drawn = _Labels()
    draw_unlearning(drawn, "")
    assert drawn.labels == [("No bundle: add one to the list (Model and Runtime)", "CANCEL")]
