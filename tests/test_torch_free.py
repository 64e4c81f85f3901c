"""The torch-free boundary: these packages import with torch (or bpy) made unimportable.

``hmu_core.motion``, ``exporter.runtime``, ``exporter.scene`` and ``blender_addon`` run inside
Blender, where torch is absent (reference/style.md §5). Each check runs in a fresh interpreter
with ``sys.modules[name] = None``, which makes ``import name`` raise ImportError, then imports
every module of the packages. To put another package under the rule, add it to the lists below.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TORCH_FREE_PACKAGES = ["hmu_core.motion", "hmu_core.sampling", "hmu_core.synth", "exporter.runtime",
                       "exporter.scene", "blender_addon"]
"""Packages whose every module must import without torch."""
TORCH_FREE_MODULES = [
    "hmu_core", "hmu_core.errors", "hmu_core.atomic", "hmu_core.progress",
    "hmu_core.eval.classifier", "hmu_core.data.concept_data",
    "hmu_core.data", "hmu_core.data.humanml3d", "hmu_core.data.concepts",
    "hmu_core.data.matching", "hmu_core.data.splits", "hmu_core.data.stats",
    "hmu_core.data.captions_import", "hmu_core.cli.data_split", "hmu_core.text",
    "hmu_core.text.clip_tokenizer", "hmu_core.assets",
    "exporter.clips", "hmu_core.cli.clips", "hmu_core.eval", "hmu_core.eval.metrics",
    "hmu_core.eval.word_vectors",
]  # fmt: skip
"""Single modules that must import without torch."""
BPY_FREE_PACKAGES = ["hmu_core.motion", "hmu_core.sampling", "hmu_core.synth", "exporter.runtime"]
BPY_FREE_MODULES = ["hmu_core", "hmu_core.errors", "hmu_core.atomic", "hmu_core.progress",
                    "exporter.clips", "hmu_core.cli.clips"]

_SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys, traceback
    blocked, packages, modules = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
    sys.modules[blocked] = None  # "import <blocked>" now raises ImportError
    failures, imported = [], []

    def record(name, exc):
        failures.append(f"{name}: {type(exc).__name__}: {exc}")

    def try_import(name):
        try:
            importlib.import_module(name)
            imported.append(name)
        except BaseException as exc:  # SystemExit too: any failure counts
            record(name, exc)

    for name in filter(None, modules):
        try_import(name)
    for name in filter(None, packages):
        try:
            pkg = importlib.import_module(name)
        except BaseException as exc:
            record(name, exc)
            continue
        imported.append(name)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=name + ".", onerror=try_import):
            try_import(info.name)
    for name in sorted(sys.modules):
        if name == blocked or name.startswith(blocked + "."):
            if sys.modules[name] is not None:
                failures.append(f"{name} was imported anyway")
    print("IMPORTED", len(imported))
    if failures:
        print("\\n".join(failures))
        sys.exit(1)
    """
)


def _run(blocked: str, packages: list[str], modules: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, blocked, ",".join(packages), ",".join(modules)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"importing with {blocked} blocked failed:\n{proc.stdout}\n{proc.stderr}"
    )
    assert "IMPORTED" in proc.stdout


def test_everything_torch_free_imports_without_torch():
    """One interpreter for every package and module: the import cost is paid once."""
    _run("torch", TORCH_FREE_PACKAGES, TORCH_FREE_MODULES)


def test_everything_bpy_free_imports_without_bpy():
    _run("bpy", BPY_FREE_PACKAGES, BPY_FREE_MODULES)


def test_the_check_catches_a_blocked_import():
    # Negative control: hmu_core.motion needs numpy, so blocking numpy must fail the check.
    with pytest.raises(AssertionError, match="numpy"):
        _run("numpy", ["hmu_core.motion"], [])
