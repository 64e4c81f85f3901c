"""Make the hmu code the zip vendors (``_vendor/``) importable as ``hmu_core`` and ``exporter``.

The runtime and the scene code use absolute imports (``from hmu_core.errors import ...``), so
the vendored copies must be top-level packages. ``scripts/build_addon.py`` puts them in
``_vendor/`` next to this file; run from the source tree there is no ``_vendor/`` and the
repository's own packages (on ``sys.path`` already) are used.
"""

from __future__ import annotations

import sys
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "_vendor"


def add_vendor_path() -> bool:
    """Put ``_vendor/`` first on ``sys.path``; True when this call added it."""
    path = str(VENDOR_DIR)
    if not VENDOR_DIR.is_dir() or path in sys.path:
        return False
    sys.path.insert(0, path)
    return True


def remove_vendor_path() -> None:
    """Undo :func:`add_vendor_path` (on unregister), so a disabled add-on leaves no trace."""
    path = str(VENDOR_DIR)
    while path in sys.path:
        sys.path.remove(path)
