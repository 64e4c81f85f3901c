"""The bundle manifest: the writer's side (file hashes, the manifest itself).

The schema (``graph_specs``), reading and every check live in ``exporter.runtime`` (re-exported
here), because the torch-free runtime and the Blender add-on must read bundles without this
package's torch-side neighbours. This module is torch-free too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exporter.runtime.bundle import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    Bundle,
    GraphSpec,
    TensorSpec,
    bundle_digest,
    check_session_io,
    graph_specs,
    read_bundle,
    read_manifest,
    sha256_file,
    verify_files,
)
from exporter.runtime.trust import SIGNATURE
from hmu_core import __version__
from hmu_core.atomic import write_json

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "Bundle", "GraphSpec", "TensorSpec",
           "bundle_digest", "check_session_io", "graph_specs", "read_bundle", "read_manifest",
           "sha256_file", "verify_files", "write_manifest"]


def write_manifest(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Hash every file under ``root`` (but the manifest and a signature) into
    ``manifest["files"]`` and write ``manifest.json``; returns the completed manifest."""
    names = (p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file())
    files = {n: sha256_file(root / n) for n in names if n not in (MANIFEST, SIGNATURE)}
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "created_by": f"hmu {__version__}",
            **manifest, "files": files}
    write_json(root / MANIFEST, full)
    return full
