"""The built extension zip: validated by Blender's tool, installed and enabled in bpy, and it
generates with no configuration from its built-in safe bundle and its own runtime wheel (a fresh
process without PYTHONPATH: the source-tree add-on registers the same ``hmu.*`` operators, and
the repository's packages must not stand in for the wheel's)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("bpy", reason="needs the bpy module")

pytestmark = pytest.mark.blender

REPO = Path(__file__).resolve().parents[2]

INSTALL = r"""
import json, math, shutil, sys, time
from pathlib import Path
import bpy
zip_path, signed, trusted_key, rig_builders = sys.argv[1:5]
started = time.perf_counter()
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                         enable_on_install=True)
installed = time.perf_counter()
name = "bl_ext.user_default.hmu"
addon = sys.modules[name]
prefs = bpy.context.preferences.addons[name].preferences
out = {"enabled": name in bpy.context.preferences.addons, "builtin_path": prefs.bundle_path,
       "bundles_before": len(prefs.bundles)}
# No configuration: Generate with the built-in bundle, as a fresh install does.
bpy.context.scene.hmu.seconds = 2.0
out["result"] = sorted(bpy.ops.hmu.generate())
generated = time.perf_counter()
strips = [s for t in bpy.context.scene.hmu.target.animation_data.nla_tracks for s in t.strips]
action = strips[0].action  # Generate adds an NLA strip by default
import hmu_core, exporter.runtime
info = addon.bundles.bundle_info(prefs.bundle_path)
out.update(frames=action["hmu_frames"], hmu_core=hmu_core.__file__,
           runtime=exporter.runtime.__file__, title=info.title, lines=list(info.lines),
           install_s=installed - started, install_to_motion_s=generated - started)
# The animator's own character (a Mixamo-named rig in centimetres, as Blender's FBX importer
# makes it): picking it as the Target is the only step.
import importlib.util
spec = importlib.util.spec_from_file_location("rig_builders", rig_builders)
builders = sys.modules["rig_builders"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(builders)
hero = builders.build_in_blender(builders.BUILDERS["mixamo"](), "Hero")
bpy.context.scene.hmu.target = hero
out["mixamo_result"] = sorted(bpy.ops.hmu.generate(prompt="a person walks forward"))
out["mixamo_strips"] = len([s for t in hero.animation_data.nla_tracks for s in t.strips])
turns = []
for frame in (1, 20):
    bpy.context.scene.frame_set(frame)
    turns.append(hero.pose.bones["mixamorig:LeftUpLeg"].matrix.to_quaternion())
out["mixamo_thigh_turn_deg"] = math.degrees(turns[0].rotation_difference(turns[1]).angle)
# The user's bundle, added by path from a script; signed, checked with the zip's cryptography.
site = Path(bpy.utils.user_resource("EXTENSIONS")) / ".local" / "lib" / "python3.11" / \
    "site-packages"
sys.path.insert(0, str(site))  # this test's Python has its own cryptography: use the zip's
for module in [m for m in sys.modules if m.startswith("cryptography")]:
    del sys.modules[module]
import cryptography
prefs.bundle_path, prefs.trusted_keys = signed, trusted_key
out["user_result"] = sorted(bpy.ops.hmu.generate())
out.update(bundles=[(b.name, b.builtin) for b in prefs.bundles], active=prefs.active_bundle,
           user_title=addon.bundles.bundle_info(prefs.bundle_path).title,
           cryptography=cryptography.__file__, ort_extracted=(site / "onnxruntime").is_dir(),
           ftfy_extracted=(site / "ftfy").is_dir())
prefs.bundle_path = ""  # back to the built-in one
out["back_to_builtin"] = prefs.bundle_path == out["builtin_path"]
# Another extension's wheel with an 'exporter' package, then a file of ours overwritten.
errors = []
other = site / "other_addon-1.0.dist-info"
other.mkdir()
(other / "METADATA").write_text("Metadata-Version: 2.1\nName: other-addon\nVersion: 1.0\n")
(other / "RECORD").write_text("exporter/__init__.py,,\nother_addon-1.0.dist-info/RECORD,,\n")
for step in ("other", "overwritten"):
    try:
        addon.vendor.check_runtime()
        errors.append("")
    except ImportError as exc:
        errors.append(str(exc))
    shutil.rmtree(other, ignore_errors=True)
    target = site / "hmu_core" / "errors.py"
    target.write_text(target.read_text() + "\n# changed by another wheel\n")
out["conflicts"] = errors
print("RESULT", json.dumps(out))
"""


def test_zip_holds_the_runtime_wheel_and_the_builtin_bundle(built_zip):
    archive = zipfile.ZipFile(built_zip)
    names = archive.namelist()
    ort = sorted(n for n in names if n.startswith("wheels/onnxruntime-"))
    assert [n.split("-")[2] for n in ort] == ["cp311", "cp313"]
    cffi = sorted(n for n in names if n.startswith("wheels/cffi-"))
    assert [n.split("-")[2] for n in cffi] == ["cp311", "cp313"]  # cryptography's backend
    assert any(n.startswith("wheels/cryptography-") and "abi3" in n for n in names)
    assert not any("onnxruntime_gpu" in n for n in names)
    assert not any(n.startswith("_vendor/") for n in names)  # no sys.path vendoring left
    (runtime,) = [n for n in names if n.startswith("wheels/hmu_blender_runtime-")]
    manifest = archive.read("blender_manifest.toml").decode()
    assert f'"./{runtime}"' in manifest
    wheel = zipfile.ZipFile(archive.open(runtime))
    inner = wheel.namelist()
    for module in ("hmu_core/motion/smpl.py", "exporter/runtime/generator.py",
                   "exporter/scene/keying.py", "exporter/clips.py"):
        assert module in inner
    assert not any(n.startswith(("hmu_core/train/", "hmu_core/unlearn/")) for n in inner)
    (record,) = [n for n in inner if n.endswith(".dist-info/RECORD")]
    assert len(wheel.read(record).decode().splitlines()) == len(inner)
    bundle = json.loads(archive.read("builtin_bundle/manifest.json"))
    assert bundle["unlearning"]["method"] == "suppress"
    assert [c["name"] for c in bundle["unlearning"]["concepts"]] == ["violence_motionx"]
    assert bundle["unlearning"]["source"]["model_dir"] == "hmu_core/assets/default_model"
    assert bundle["quantization"]["graphs"] == ["text_encoder"]
    size = built_zip.stat().st_size
    print(f"\n{built_zip.name}: {size / 1e6:.1f} MB")
    assert size < 200e6


def test_zip_installs_and_generates_with_no_configuration(built_zip, default_bundle, tmp_path):
    from exporter.signing import generate_keypair, sign_bundle

    key, public, _ = generate_keypair(tmp_path / "studio")
    signed = tmp_path / "signed"
    shutil.copytree(default_bundle, signed)
    sign_bundle(signed, key)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "user")
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", INSTALL, str(built_zip), str(signed),
                          str(public), str(REPO / "tests" / "motion" / "rig_builders.py")],
                         capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    got = json.loads(line[len("RESULT "):])
    ext = str(tmp_path / "user")
    assert got["enabled"] and got["result"] == ["FINISHED"] and got["frames"] == 40
    assert got["bundles_before"] == 0 and got["builtin_path"].startswith(ext)
    assert got["builtin_path"].endswith("builtin_bundle")
    assert got["hmu_core"].startswith(ext) and got["runtime"].startswith(ext), got
    assert "site-packages" in got["hmu_core"]  # from the runtime wheel
    assert got["title"] == "Unlearned: violence_motionx"
    assert any(x.startswith("Keywords: kick, punch") for x in got["lines"])
    assert "Method: latent code suppression" in got["lines"]
    # A Mixamo character: the built-in model, retargeted through the detected bone map.
    assert got["mixamo_result"] == ["FINISHED"] and got["mixamo_strips"] == 1
    assert got["mixamo_thigh_turn_deg"] > 5.0  # the walk moves its legs
    assert got["user_result"] == ["FINISHED"] and got["active"] == 1
    assert got["bundles"] == [["Built-in safe model", True], ["signed", False]]
    assert got["user_title"] == "Not unlearned" and got["back_to_builtin"]
    assert got["cryptography"].startswith(ext), got
    assert got["ort_extracted"] and got["ftfy_extracted"]
    other, overwritten = got["conflicts"]
    assert "other-addon" in other and "exporter" in other
    assert "errors.py is not the file" in overwritten
    load = os.getloadavg()[0]
    print(f"\ninstall + enable {got['install_s']:.1f} s, install to first motion "
          f"{got['install_to_motion_s']:.1f} s, process {time.perf_counter() - started:.1f} s "
          f"(load average {load:.1f})")
