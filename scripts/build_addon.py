"""Build the hmu Blender extension zip: add-on code, hmu's runtime wheel, the built-in safe
bundle and onnxruntime wheels.

    .venv/bin/python scripts/build_addon.py                     # CPU build, all platforms
    .venv/bin/python scripts/build_addon.py --variant gpu       # CUDA build (Linux, Windows)
    .venv/bin/python scripts/build_addon.py --platforms linux-x64 --offline

Steps: copy ``blender_addon/`` into a staging folder; build the torch-free hmu modules
(``exporter.runtime.HMU_MODULES`` plus ``exporter.runtime``, ``exporter.scene`` and
``exporter.clips``) into the pure-Python wheel ``hmu-blender-runtime`` (checking that every
hmu import inside them is in it too; its version carries a hash of its files, so a changed
wheel is never mistaken for the installed one); export the built-in bundle into
``builtin_bundle/``: the embedded default model with the recorded safety edit re-applied
(``hmu_core/assets/default_unlearning.json``, code suppression r 32; no data needed) and its
text encoder's weights stored as int8 (``--quantize text-int8``: the CPU zip for every platform
stays under 200 MB); fetch wheels for Python 3.11 (Blender 5.0) and 3.13 (Blender 5.1+) with ``pip
download`` into the git-ignored cache ``build/wheels/`` (``--offline`` uses the cache only);
write the manifest's ``wheels`` and ``platforms``; build and validate with Blender's own
extension tool from the bpy wheel (``bl_pkg/cli/blender_ext.py``). The CPU variant bundles
``onnxruntime``, the GPU variant ``onnxruntime-gpu`` instead (never both: they are the same
Python package); both have the id ``hmu``, so installing one replaces the other. CUDA and
cuDNN are not bundled (gigabytes): see the README.

Exit status 2 with a one-line message when a wheel cannot be had, the bundle cannot be made or
validation fails.
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "blender_addon"
CACHE = REPO / "build" / "wheels"
STAGING = REPO / "build" / "addon"
PYTHONS = ("3.11", "3.13")
PLATFORM_TAGS = {
    # Blender 5 needs glibc 2.28; older manylinux wheels run there too (cffi ships only
    # manylinux2014 = 2.17 final wheels), and pip matches only the tags it is given.
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64"),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_14_0_arm64",),
}
VARIANTS = {
    # Runtime wheels: onnxruntime's own dependencies (numpy ships with Blender), ftfy, which
    # the CLIP tokenizer of official bundles needs, and cryptography (with cffi, pycparser),
    # which checks bundle signatures when the Trusted Keys preference is set.
    "cpu": ("onnxruntime", ("linux-x64", "windows-x64", "macos-arm64")),
    "gpu": ("onnxruntime-gpu", ("linux-x64", "windows-x64")),
}
COMMON_WHEELS = ("flatbuffers", "packaging", "protobuf", "ftfy", "wcwidth", "cryptography", "cffi",
                 "pycparser")
EXTRA_VENDORED = ("exporter", "exporter.runtime", "exporter.scene", "exporter.clips",
                  "hmu_core.shard", "hmu_core.progress")
"""Vendored besides HMU_MODULES: the runtime itself and the bpy scene/clip-library code (with
the clip library's ``hmu_core.shard`` and ``hmu_core.progress``)."""
SKIP = ("__pycache__", "*.pyc")
BUILTIN_BUNDLE = Path("builtin_bundle")
"""Where the built-in bundle goes inside the add-on (``blender_addon/bundles.py`` reads it)."""
TEXT_QUANTIZE = "text-int8"
"""The built-in bundle's text encoder weights are int8: MiniLM is 90 MB in float32, which would
take the all-platform CPU zip over 200 MB."""


class BuildError(Exception):
    """A build step failed; the message says what to do."""


def run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise BuildError(f"{' '.join(cmd[:4])} ... failed:\n  " + "\n  ".join(tail))
    return proc.stdout


# -- the runtime wheel -----------------------------------------------------------------------

def vendored_modules() -> list[str]:
    """The runtime's ``HMU_MODULES`` plus :data:`EXTRA_VENDORED`."""
    sys.path.insert(0, str(REPO))
    from exporter.runtime import HMU_MODULES

    return sorted(set(HMU_MODULES) | set(EXTRA_VENDORED))


def module_files(name: str, listed: Iterable[str]) -> list[Path]:
    """Files (relative to the repo) of a vendored module. A package with none of its
    submodules listed is vendored whole (data files included); otherwise only its
    ``__init__.py``, and the listed submodules bring themselves; a single-file module brings
    the data files it names (:func:`data_files`)."""
    path = REPO / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return [path.with_suffix(".py").relative_to(REPO),
                *(data.relative_to(REPO) for data in data_files(path.with_suffix(".py")))]
    if not (path / "__init__.py").is_file():
        raise BuildError(f"module {name} is not in the repository; fix HMU_MODULES")
    if any(other.startswith(name + ".") for other in listed):
        return [(path / "__init__.py").relative_to(REPO)]
    return sorted(p.relative_to(REPO) for p in path.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def data_files(module: Path) -> list[Path]:
    """Files beside a single-file module that it names in a string literal: the data it reads
    from its own folder (``clip_tokenizer.py`` -> ``clip_unicode_classes.json``)."""
    named = {node.value for node in ast.walk(ast.parse(module.read_text(encoding="utf-8")))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    return sorted(p for p in module.parent.iterdir()
                  if p.is_file() and p.suffix not in (".py", ".pyc") and p.name in named)


def hmu_imports(source: Path) -> set[str]:
    """Absolute ``hmu_core``/``exporter`` modules a file imports (``from a.b import c`` may
    name a module ``a.b.c`` or an attribute of ``a.b``: both are returned, checked leniently)."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in ("hmu_core", "exporter")}


def vendored_files() -> list[Path]:
    """The runtime wheel's files (relative to the repo); BuildError if one imports a module
    that is not among them."""
    listed = vendored_modules()
    files = sorted({f for name in listed for f in module_files(name, listed)})
    have = {".".join(f.with_suffix("").parts).removesuffix(".__init__") for f in files
            if f.suffix == ".py"}
    for rel in files:
        if rel.suffix != ".py":
            continue
        for module in sorted(hmu_imports(REPO / rel)):
            parent = module.rsplit(".", 1)[0]
            if module not in have and not (parent in have and _is_attribute(parent, module)):
                raise BuildError(f"{rel} imports {module}, which is not vendored: add it to "
                                 f"HMU_MODULES (exporter/runtime/__init__.py) or "
                                 f"EXTRA_VENDORED")
    return files


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode("ascii")


def runtime_dist() -> str:
    """The wheel's distribution name, from ``blender_addon/vendor.py`` (which checks it at
    register; loaded by path: the package's ``__init__`` imports bpy)."""
    spec = importlib.util.spec_from_file_location("hmu_addon_vendor", SOURCE / "vendor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DIST


def build_runtime_wheel(out_dir: Path) -> Path:
    """The vendored modules as a pure-Python wheel (fixed timestamps: same files, same bytes).

    Its version is hmu's plus a local label of the files' hash, so Blender, which keeps an
    installed wheel of the same name and version, re-extracts it whenever the code changed.
    """
    sys.path.insert(0, str(REPO))
    from hmu_core import __version__

    files = vendored_files()
    contents = {rel.as_posix(): (REPO / rel).read_bytes() for rel in files}
    digest = hashlib.sha256()
    for name, data in contents.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    dist = runtime_dist()
    version = f"{__version__}+{digest.hexdigest()[:12]}"
    stem = f"{dist.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    contents[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\nSummary: hmu's torch-free "
        f"runtime for the hmu Blender extension (hmu_core, exporter)\n").encode()
    contents[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: hmu build_addon\n"
                                 b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    contents[f"{info}/top_level.txt"] = b"exporter\nhmu_core\n"
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n"
                     for name, data in contents.items()) + f"{info}/RECORD,,\n"
    contents[f"{info}/RECORD"] = record.encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            zf.writestr(entry, data, zipfile.ZIP_DEFLATED)
    return path


def check_top_levels(wheels: list[Path]) -> None:
    """BuildError when two different distributions would extract the same top-level name
    (Blender extracts every wheel into one site-packages folder)."""
    owner: dict[str, str] = {}
    for wheel in wheels:
        dist = wheel.name.split("-")[0].lower()
        for top in {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}:
            if top.endswith((".dist-info", ".data")):
                continue
            if owner.setdefault(top, dist) != dist:
                raise BuildError(f"{wheel.name} and the {owner[top]} wheel both provide "
                                 f"'{top}'; the extension cannot ship both")


# -- the built-in bundle ---------------------------------------------------------------------

def export_default_bundle(dest: Path) -> Path:
    """The embedded default model with the recorded safety edit, exported to ``dest``."""
    sys.path.insert(0, str(REPO))
    from exporter.export import export_bundle
    from hmu_core.assets import DEFAULT_UNLEARNING, default_model_dir
    from hmu_core.atomic import write_json
    from hmu_core.errors import HmuError
    from hmu_core.models.model_set import RECORD_FILE, load_model_set
    from hmu_core.unlearn.record import relative_source
    from hmu_core.unlearn.sets import reapply_suppression

    try:
        record = json.loads(DEFAULT_UNLEARNING.read_text(encoding="utf-8"))
        with tempfile.TemporaryDirectory(prefix="hmu-build-") as tmp:
            made = reapply_suppression(load_model_set(default_model_dir()), record,
                                       Path(tmp) / "set")
            shipped = {**made.record, "source": relative_source(made.record["source"], REPO)}
            write_json(made.path / RECORD_FILE, shipped)  # the zip carries no build paths
            export_bundle(made.path, dest, quantize=TEXT_QUANTIZE)
    except (HmuError, OSError, json.JSONDecodeError) as exc:
        raise BuildError(f"cannot make the built-in bundle: {exc}") from None
    (dest / ".hmu-output").unlink(missing_ok=True)  # the exporter's own marker, not bundle data
    return dest


def _is_attribute(package: str, name: str) -> bool:
    """``name`` is an attribute of ``package``, not a submodule file of it."""
    path = REPO / Path(*name.split("."))
    return not path.with_suffix(".py").is_file() and not path.is_dir()


# -- wheels ----------------------------------------------------------------------------------

def fetch_wheels(variant: str, platforms: Iterable[str], offline: bool) -> list[Path]:
    """Wheels for every Python x platform, from the cache or PyPI (``pip download``)."""
    runtime = VARIANTS[variant][0]
    wheels: dict[str, Path] = {}
    for platform in platforms:
        for python in PYTHONS:
            folder = CACHE / variant / f"cp{python.replace('.', '')}-{platform}"
            tags = [arg for tag in PLATFORM_TAGS[platform] for arg in ("--platform", tag)]
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                   "--no-deps", "--python-version", python, *tags, "-d", str(folder), runtime,
                   *COMMON_WHEELS]
            if offline:
                cmd[4:4] = ["--no-index", "--find-links", str(folder)]
            try:
                run(cmd)
            except BuildError as exc:
                how = "run once without --offline" if offline else "check the network"
                raise BuildError(f"cannot get the wheels for Python {python} on {platform} "
                                 f"({how}): {exc}") from None
            for wheel in folder.glob("*.whl"):
                wheels.setdefault(wheel.name, wheel)
    other = "onnxruntime" if variant == "gpu" else "onnxruntime_gpu"
    if any(name.startswith(other + "-") for name in wheels):
        raise BuildError(f"the {variant} build must not bundle {other}; clear {CACHE}")
    return sorted(wheels.values())


# -- manifest, build, validate ---------------------------------------------------------------

def write_manifest(stage: Path, wheels: list[Path], platforms: Iterable[str]) -> None:
    """The source manifest plus ``platforms`` and ``wheels`` as top-level keys."""
    text = (SOURCE / "blender_manifest.toml").read_text(encoding="utf-8")
    quoted = ", ".join(f'"{p}"' for p in platforms)
    added = (f"platforms = [{quoted}]\n"
             "wheels = [\n" + "".join(f'  "./wheels/{w.name}",\n' for w in wheels) + "]\n\n")
    first_table = re.search(r"^\[", text, flags=re.MULTILINE)
    cut = first_table.start() if first_table else len(text)
    text = text[:cut] + added + text[cut:]
    tomllib.loads(text)  # fail here, not in Blender, on a broken manifest
    (stage / "blender_manifest.toml").write_text(text, encoding="utf-8")


def blender_ext_tool() -> Path:
    """Blender's extension CLI from the bpy wheel (stdlib only: runs without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("the bpy module is needed for Blender's extension validator: "
                         "pip install bpy==5.0.1 (Python 3.11)")
    for root in spec.submodule_search_locations:
        found = sorted(Path(root).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    raise BuildError("bl_pkg/cli/blender_ext.py not found in the bpy package")


def build(variant: str, platforms: list[str], out_dir: Path, offline: bool) -> Path:
    """Stage, validate and zip one variant; returns the zip path."""
    manifest = tomllib.loads((SOURCE / "blender_manifest.toml").read_text(encoding="utf-8"))
    unknown = sorted(set(platforms) - set(VARIANTS[variant][1]))
    if unknown:
        raise BuildError(f"the {variant} build has no wheels for {unknown}; choose from "
                         f"{', '.join(VARIANTS[variant][1])}")
    # Each build stages in its own folder, so two builds at once (tests on two workers, two
    # variants) never touch each other's files; it is removed afterwards, even on failure.
    STAGING.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{variant}-{os.getpid()}-", dir=STAGING) as tmp:
        staging = Path(tmp)
        stage = staging / manifest["id"]
        shutil.copytree(SOURCE, stage, ignore=shutil.ignore_patterns(*SKIP))
        export_default_bundle(stage / BUILTIN_BUNDLE)
        runtime = build_runtime_wheel(staging / "runtime")
        wheels = [*fetch_wheels(variant, platforms, offline), runtime]
        check_top_levels(wheels)
        (stage / "wheels").mkdir()
        for wheel in wheels:
            shutil.copy2(wheel, stage / "wheels" / wheel.name)
        write_manifest(stage, wheels, platforms)
        tool = blender_ext_tool()
        run([sys.executable, str(tool), "validate", str(stage)])
        tmp_out = staging / "dist"
        tmp_out.mkdir()
        run([sys.executable, str(tool), "build", "--source-dir", str(stage), "--output-dir",
             str(tmp_out)])
        (built,) = tmp_out.glob("*.zip")
        run([sys.executable, str(tool), "validate", str(built)])
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{manifest['id']}-{manifest['version']}-{variant}-" \
                           f"{'_'.join(p.replace('-', '_') for p in platforms)}.zip"
        shutil.move(built, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=(*VARIANTS, "all"), default="cpu")
    parser.add_argument("--platforms", default=None,
                        help="comma-separated (default: every platform of the variant: "
                             "linux-x64, windows-x64, macos-arm64 for cpu; no macOS for gpu)")
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="where the zip goes")
    parser.add_argument("--offline", action="store_true",
                        help="use only wheels cached in build/wheels (no network)")
    args = parser.parse_args(argv)
    variants = list(VARIANTS) if args.variant == "all" else [args.variant]
    try:
        for variant in variants:
            platforms = args.platforms.split(",") if args.platforms else \
                list(VARIANTS[variant][1])
            print(build(variant, platforms, args.out, args.offline))
    except BuildError as exc:
        print(f"build_addon: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
