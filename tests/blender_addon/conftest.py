"""Fixtures for the add-on tests: bpy with the add-on enabled from the source tree, a tiny
bundle exported from the embedded default model, and a fresh empty scene per test.

Blender's user folder is redirected to a temporary directory (``BLENDER_USER_RESOURCES``,
read when bpy is imported) so tests never touch ``~/.config/blender``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # blender_addon/ is not an installed package
    sys.path.insert(0, str(REPO))
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="hmu_blender_user_"))

bpy = pytest.importorskip("bpy", reason="the add-on tests need the bpy module (pip install "
                                        "bpy==5.0.1, or the 'blender' extra)")

ADDON = "blender_addon"


@pytest.fixture(scope="session")
def addon():
    """The add-on module, enabled from ``blender_addon/`` as a legacy add-on."""
    import addon_utils

    module = addon_utils.enable(ADDON, default_set=True, handle_error=None)
    assert module is not None, "enabling the add-on from the source tree failed"
    yield module
    addon_utils.disable(ADDON, default_set=True)


@pytest.fixture(scope="session")
def built_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CPU extension zip for linux-x64 from cached wheels, built once per session (the
    first build ever downloads the wheels)."""
    out = tmp_path_factory.mktemp("dist")
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "build_addon.py"),
                          "--platforms", "linux-x64", "--offline", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    if run.returncode != 0 and "cannot get the wheels" in run.stderr:
        pytest.skip("onnxruntime wheels are not cached in build/wheels and this test stays "
                    "offline: run scripts/build_addon.py once with network access")
    assert run.returncode == 0, run.stderr
    return Path(run.stdout.strip().splitlines()[-1])


@pytest.fixture
def scene(addon, default_bundle: Path):
    """An empty scene (the add-on stays registered) with the preferences set to the tiny
    bundle on CPU, one thread."""
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.bundle_path = str(default_bundle)
    prefs.device = "CPU"
    prefs.threads = 1
    return bpy.context.scene
