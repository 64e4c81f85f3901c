"""``exporter.runtime`` imports only the stdlib, numpy, onnxruntime and ``HMU_MODULES``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from exporter.runtime import HMU_MODULES

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = """
import importlib, json, pkgutil, sys
import numpy  # allowed; its own imports (cython runtime, ...) are not the runtime's
before = set(sys.modules)
sys.modules["torch"] = None
import exporter.runtime as rt
for info in pkgutil.walk_packages(rt.__path__, prefix="exporter.runtime."):
    importlib.import_module(info.name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_runtime_imports_only_allowed_modules():
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=True)
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    hmu = {m for m in loaded if m.split(".")[0] == "hmu_core"}
    # a listed package none of whose submodules is listed is vendored whole
    # (scripts/build_addon.py: hmu_core.motion, hmu_core.sampling); the others are single modules
    whole = [p for p in HMU_MODULES if not any(o.startswith(p + ".") for o in HMU_MODULES)]
    outside = sorted(m for m in hmu if m not in HMU_MODULES
                     and not any(m.startswith(p + ".") for p in whole))
    assert not outside, f"runtime imports hmu modules not in HMU_MODULES: {outside}"
    third_party = {m.split(".")[0] for m in loaded} - set(sys.stdlib_module_names) \
        - {"hmu_core", "exporter", "onnxruntime", "torch"}
    assert not third_party, f"runtime imports {sorted(third_party)}"
    assert "exporter.runtime.generator" in loaded and "exporter.export" not in loaded
