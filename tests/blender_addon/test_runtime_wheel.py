"""The runtime wheel ``scripts/build_addon.py`` builds: reproducible, its RECORD right, its name
the one the add-on checks, and no top-level name shared with another wheel of the zip."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build_addon():
    spec = importlib.util.spec_from_file_location("build_addon", REPO / "scripts" /
                                                  "build_addon.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wheel_is_reproducible_and_its_record_matches(build_addon, tmp_path):
    first = build_addon.build_runtime_wheel(tmp_path / "a")
    second = build_addon.build_runtime_wheel(tmp_path / "b")
    assert first.name == second.name and first.read_bytes() == second.read_bytes()
    assert first.name.startswith("hmu_blender_runtime-0.1.0+")
    wheel = zipfile.ZipFile(first)
    (record,) = [n for n in wheel.namelist() if n.endswith(".dist-info/RECORD")]
    rows = [line.split(",") for line in wheel.read(record).decode().splitlines()]
    assert sorted(r[0] for r in rows) == sorted(wheel.namelist())
    for name, digest, size in rows:
        if name == record:
            continue
        data = wheel.read(name)
        want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={want}", len(data)), name
    metadata = wheel.read(record.replace("RECORD", "METADATA")).decode()
    assert "Name: hmu-blender-runtime\n" in metadata
    tops = {n.split("/")[0] for n in wheel.namelist() if ".dist-info" not in n}
    assert tops == {"hmu_core", "exporter"}


def test_two_wheels_with_one_top_level_name_are_refused(build_addon, tmp_path):
    ours = build_addon.build_runtime_wheel(tmp_path)
    other = tmp_path / "other_addon-1.0-py3-none-any.whl"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("exporter/__init__.py", "")
    with pytest.raises(build_addon.BuildError, match="both provide 'exporter'"):
        build_addon.check_top_levels([other, ours])
    build_addon.check_top_levels([ours])


def test_single_modules_bring_the_data_they_read(build_addon, tmp_path):
    """The CLIP tokenizer reads its Unicode tables from beside itself: a CLIP bundle fails in
    Blender without them (the vendored copy once lacked them)."""
    names = zipfile.ZipFile(build_addon.build_runtime_wheel(tmp_path)).namelist()
    assert "hmu_core/text/clip_tokenizer.py" in names
    assert "hmu_core/text/clip_unicode_classes.json" in names
    assert "hmu_core/text/minilm.py" not in names  # torch: never vendored
