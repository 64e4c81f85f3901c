"""The built extension zip: validated by Blender's tool, installed and enabled in bpy, and it
generates from its own vendored code (a fresh process: the source-tree add-on registers the
same ``hmu.*`` operators)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("bpy", reason="needs the bpy module")

pytestmark = pytest.mark.blender

REPO = Path(__file__).resolve().parents[2]

INSTALL = r"""
import json, sys
from pathlib import Path
import bpy
zip_path, bundle, trusted_key = sys.argv[1], sys.argv[2], sys.argv[3]
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                         enable_on_install=True)
name = "bl_ext.user_default.hmu"
prefs = bpy.context.preferences.addons[name].preferences
prefs.bundle_path, prefs.device, prefs.threads = bundle, "CPU", 1
prefs.trusted_keys = trusted_key  # the bundle is signed: checked with the zip's cryptography
import hmu_core, exporter.runtime
site = Path(bpy.utils.user_resource("EXTENSIONS")) / ".local" / "lib" / "python3.11" / \
    "site-packages"
sys.path.insert(0, str(site))  # this test's Python has its own cryptography: use the zip's
for module in [m for m in sys.modules if m.startswith("cryptography")]:
    del sys.modules[module]
import cryptography
bpy.context.scene.hmu.seconds = 2.0
result = bpy.ops.hmu.generate()
strips = [s for t in bpy.context.scene.hmu.target.animation_data.nla_tracks for s in t.strips]
action = strips[0].action  # Generate adds an NLA strip by default
print("RESULT", json.dumps({
    "enabled": name in bpy.context.preferences.addons, "result": sorted(result),
    "hmu_core": hmu_core.__file__, "runtime": exporter.runtime.__file__,
    "cryptography": cryptography.__file__,
    "ort_extracted": (site / "onnxruntime").is_dir(), "ftfy_extracted": (site / "ftfy").is_dir(),
    "frames": action["hmu_frames"]}))
"""


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CPU zip for linux-x64 from cached wheels (the first build downloads them)."""
    out = tmp_path_factory.mktemp("dist")
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "build_addon.py"),
                          "--platforms", "linux-x64", "--offline", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    if run.returncode != 0 and "cannot get the wheels" in run.stderr:
        pytest.skip("onnxruntime wheels are not cached in build/wheels and this test stays "
                    "offline: run scripts/build_addon.py once with network access")
    assert run.returncode == 0, run.stderr
    return Path(run.stdout.strip().splitlines()[-1])


def test_zip_holds_both_python_wheels_and_vendored_code(built_zip):
    names = zipfile.ZipFile(built_zip).namelist()
    ort = sorted(n for n in names if n.startswith("wheels/onnxruntime-"))
    assert [n.split("-")[2] for n in ort] == ["cp311", "cp313"]
    cffi = sorted(n for n in names if n.startswith("wheels/cffi-"))
    assert [n.split("-")[2] for n in cffi] == ["cp311", "cp313"]  # cryptography's backend
    assert any(n.startswith("wheels/cryptography-") and "abi3" in n for n in names)
    assert not any("onnxruntime_gpu" in n for n in names)
    for module in ("_vendor/hmu_core/motion/smpl.py", "_vendor/exporter/runtime/generator.py",
                   "_vendor/exporter/scene/keying.py", "_vendor/exporter/clips.py"):
        assert module in names


def test_zip_installs_enables_and_generates_in_bpy(built_zip, tiny_bundle, tmp_path):
    from exporter.signing import generate_keypair, sign_bundle

    key, public, _ = generate_keypair(tmp_path / "studio")
    signed = tmp_path / "signed"
    shutil.copytree(tiny_bundle, signed)
    sign_bundle(signed, key)
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "user")}
    run = subprocess.run([sys.executable, "-c", INSTALL, str(built_zip), str(signed),
                          str(public)],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    got = json.loads(line[len("RESULT "):])
    ext = str(tmp_path / "user")
    assert got["enabled"] and got["result"] == ["FINISHED"] and got["frames"] == 40
    assert got["hmu_core"].startswith(ext) and got["runtime"].startswith(ext), got
    assert got["cryptography"].startswith(ext), got
    assert got["ort_extracted"] and got["ftfy_extracted"]
