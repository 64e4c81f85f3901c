"""Check that ``hmu_core`` and ``exporter`` are hmu's own, from the runtime wheel the zip ships.

The torch-free hmu code ships as the wheel ``hmu-blender-runtime`` (``scripts/build_addon.py``
builds it and lists it in the manifest's ``wheels``; Blender extracts it into the extensions'
shared site-packages, which Blender itself puts on ``sys.path``). Its packages keep their
names, because the code imports itself absolutely (``from hmu_core.errors import ...``). That
folder is shared by every extension, and Blender extracts wheels over each other, so a
package of the same name from another extension, or a ``hmu_core`` earlier on ``sys.path``,
would silently replace ours. :func:`check_runtime` refuses that before any hmu module is
imported: the packages must be this distribution's files, unchanged (the RECORD's sha256), and
no other installed distribution may provide the same top-level names. Enabled from the source
tree (tests, development) there is no such distribution, and whatever ``hmu_core`` and
``exporter`` are importable are used. Nothing here imports bpy or hmu code.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import importlib.util
import re
from pathlib import Path, PurePosixPath

DIST = "hmu-blender-runtime"
"""The distribution name of the wheel: hmu's own, so Blender's wheel de-duplication (by name and
version) never takes it for another project's wheel."""
PACKAGES = ("exporter", "hmu_core")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_runtime() -> Path | None:
    """The site-packages folder hmu's packages come from (None from the source tree).

    Raises:
        ImportError: a package is missing, comes from elsewhere than the runtime wheel, was
            changed on disk, or another installed distribution provides it; the message says
            which and what to do.
    """
    specs = {name: importlib.util.find_spec(name) for name in PACKAGES}
    missing = [name for name, spec in specs.items() if spec is None or not spec.origin]
    if missing:
        raise ImportError(f"hmu: the package(s) {', '.join(missing)} are missing; reinstall "
                          f"the hmu extension")
    try:
        dist = md.distribution(DIST)
    except md.PackageNotFoundError:
        return None  # the source tree: the repository's packages
    root = Path(dist.locate_file("")).resolve()
    for name, spec in specs.items():
        if Path(spec.origin).resolve() != root / name / "__init__.py":
            raise ImportError(f"hmu: the package '{name}' is imported from {spec.origin}, not "
                              f"from hmu's runtime wheel in {root}: another add-on or a "
                              f"PYTHONPATH entry provides a package of that name; disable it "
                              f"or remove it from the path")
    for file in dist.files or []:
        if file.hash is not None and file.hash.mode == "sha256" and \
                _sha256(root / file) != file.hash.value:
            raise ImportError(f"hmu: {root / file} is not the file hmu's runtime wheel "
                              f"installed (another extension's wheel may have overwritten "
                              f"it); reinstall the hmu extension")
    for other in md.distributions(path=[str(root)]):
        name = other.metadata["Name"] or ""
        tops = {PurePosixPath(str(f)).parts[0] for f in other.files or []}
        if _normal(name) != _normal(DIST) and tops & set(PACKAGES):
            raise ImportError(f"hmu: the extension wheel '{name}' also provides "
                              f"{', '.join(sorted(tops & set(PACKAGES)))}, which hmu needs "
                              f"for itself; disable the extension that ships it")
    return root
