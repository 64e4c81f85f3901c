"""Clip libraries: a prompt file -> one file per clip and format, plus ``index.json``.

Prompt file syntax (UTF-8, one clip per line)::

    # comment lines and blank lines are skipped
    a person waves with the right hand
    a person jumps twice | 3
    a person walks in a circle | 6.5 | 42
    a person bows || 7

Each line is ``prompt text[ | seconds[ | seed]]``: fields are separated by ``|`` (so a prompt
cannot contain one) and stripped; an empty or missing ``seconds`` is the default duration
(``ClipsParams.seconds``), an empty or missing ``seed`` is ``ClipsParams.seed + i`` for the i-th
clip (0-based, comment and blank lines not counted), as in ``hmu generate``. A ``#`` starts a
comment only as the first non-blank character of a line. Errors name the file and line.

Outputs in ``out_dir``: ``{i:03d}_{slug}_s{seed}.{bvh,npz,fbx,glb}`` (the slug is the prompt in
lower case, non-alphanumerics as ``-``, at most 40 characters), so names are stable across runs;
BVH and npz come from ``hmu_core.motion``'s writers, FBX and GLB from headless Blender
(``exporter.scene.library``; bpy is imported only when they are asked for). ``index.json``
holds, per clip: index, line, prompt, seed, seconds, frames, fps, files, the bundle's digest
under the key ``bundle_sha256`` (``exporter.runtime.bundle.bundle_digest``: one sha256 over
``manifest.json`` and every file it lists), model kind and unlearning record. It is
rewritten atomically after each clip, and every output file is written atomically, so an
interrupted run keeps every finished clip and no half-written file.

With trusted keys (``ClipsParams.trusted_keys`` or ``$HMU_TRUSTED_KEYS``) only a bundle signed
by one of them is used (``exporter.runtime.trust``).

Feet are planted first (``hmu_core.motion.foot_contact``; ``ClipsParams.foot_cleanup``, on by
default, recorded per clip in the index).

Resume: a clip is skipped when its index entry has the same prompt, seed, seconds, bundle
digest and foot clean-up setting and all of its requested files exist; anything else (an
edited line, a deleted file, a new format, another bundle) regenerates that clip. Files of
superseded clips are left in place (they are no longer listed in the index).

Shards (a library of a million clips as N independent jobs: a SLURM array, Kubernetes indexed
Jobs): ``make_clips(..., shard=Shard(i, n))`` makes only the clips whose index is ``i`` mod
``n`` and records them in ``index.shard-{i}-of-{n}.json`` instead of ``index.json``. Clip
files are named by clip index, so shards never collide and write exactly the files of one
run, to one shared directory (or to several whose contents are then copied into one).
``merge_shards`` then checks that every clip of the prompt file is finished, with this bundle
and these formats, and writes the ``index.json`` one run would have written (and removes the
shard indexes). A rerun shard resumes from its own index or from a merged ``index.json``.

Usage::

    from exporter.clips import ClipsParams, make_clips
    report = make_clips("prompts.txt", "bundle_dir", "library/",
                        ClipsParams(formats=("bvh", "glb"), seconds=4.0, seed=0))
    report.generated, report.skipped  # clip file stems
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.runtime.bundle import read_bundle
from exporter.runtime.generator import Generator
from exporter.runtime.sessions import check_device
from hmu_core.atomic import write_json
from hmu_core.errors import BundleError, ConfigError
from hmu_core.motion.amass import write_amass_npz
from hmu_core.motion.bvh import write_bvh
from hmu_core.motion.foot_contact import clean_feet
from hmu_core.motion.motion import Motion
from hmu_core.progress import Progress, no_progress, track
from hmu_core.sampling.prompts import check_prompts
from hmu_core.shard import Shard

log = logging.getLogger(__name__)

FORMATS = ("bvh", "npz", "fbx", "glb")
BPY_FORMATS = ("fbx", "glb")
INDEX = "index.json"
SHARD_INDEX = re.compile(r"index\.shard-(\d+)-of-(\d+)\.json")
INDEX_FORMAT = "hmu-clips"
INDEX_VERSION = 1
SLUG_CHARS = 40


def shard_index_name(shard: Shard) -> str:
    """A shard's index file, e.g. ``index.shard-0-of-4.json`` (matched by ``SHARD_INDEX``)."""
    return f"index.shard-{shard.index}-of-{shard.count}.json"


def slugify(text: str, max_chars: int = SLUG_CHARS) -> str:
    """``text`` lower-cased, runs of non-alphanumerics as one ``-``, trimmed; ``clip`` if empty."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:max_chars].strip("-")
    return slug or "clip"


@dataclass(frozen=True)
class ClipSpec:
    """One line of a prompt file: clip ``index`` (0-based), source ``line`` (1-based)."""

    index: int
    line: int
    prompt: str
    seconds: float
    seed: int

    @property
    def stem(self) -> str:
        """The clip's file name without suffix, e.g. ``003_a-person-jumps_s42``."""
        return f"{self.index:03d}_{slugify(self.prompt)}_s{self.seed}"

    def file_name(self, fmt: str) -> str:
        return f"{self.stem}.{fmt}"


@dataclass(frozen=True)
class ClipsParams:
    """What to make: formats, onnxruntime device and threads, default seconds and seed, and
    the trusted public-key files a bundle must be signed by (besides ``$HMU_TRUSTED_KEYS``)."""

    formats: tuple[str, ...] = FORMATS
    device: str = "auto"
    seconds: float = 4.0
    seed: int = 0
    threads: int | None = None
    trusted_keys: tuple[str, ...] = ()
    foot_cleanup: bool = True
    """Plant the feet (``hmu_core.motion.foot_contact.clean_feet``) before writing."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "formats", parse_formats(self.formats))
        object.__setattr__(self, "device", check_device(self.device))
        _check_seconds(self.seconds, "the default seconds")
        _check_seed(self.seed, "the default seed")


@dataclass
class ClipsReport:
    """What :func:`make_clips` did: clip stems generated and skipped, wall time, index path."""

    out_dir: Path
    index_path: Path
    generated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """``"bvh,npz"`` or a sequence -> a tuple of known formats, in the given order."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out = tuple(str(f).strip().lower().lstrip(".") for f in items if str(f).strip())
    unknown = [f for f in out if f not in FORMATS]
    if not out or unknown:
        raise ConfigError(f"formats {unknown or 'none'} unknown: choose from {','.join(FORMATS)} "
                          f"(comma-separated, e.g. --formats bvh,glb)")
    if len(set(out)) != len(out):
        raise ConfigError(f"formats {','.join(out)} repeat a format; give each once")
    return out


def _check_seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: seconds must be a number > 0, got {value!r}")
    return float(value)


def _check_seed(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: the seed must be an integer >= 0, got {value!r}")
    return value


def parse_prompts(text: str, *, seconds: float = 4.0, seed: int = 0,
                  source: str = "<prompts>") -> list[ClipSpec]:
    """Parse prompt-file ``text`` (syntax in the module docstring) into clips.

    Raises:
        ConfigError: ``source:line: what is wrong``, or a file without any clip.
    """
    specs: list[ClipSpec] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{number}"
        fields = [f.strip() for f in line.split("|")]
        if len(fields) > 3:
            raise ConfigError(f"{where}: {len(fields)} '|'-separated fields; a line is "
                              f"'prompt[ | seconds[ | seed]]' and a prompt cannot contain '|'")
        prompt = fields[0]
        if not prompt:
            raise ConfigError(f"{where}: the prompt is empty; write the text before the first '|'")
        try:
            prompt = check_prompts(prompt)[0]
        except ConfigError as exc:
            raise ConfigError(f"{where}: {str(exc).replace('prompt 0', 'the prompt')}") from None
        clip_seconds, clip_seed = seconds, seed + len(specs)
        if len(fields) > 1 and fields[1]:
            try:
                clip_seconds = float(fields[1])
            except ValueError:
                raise ConfigError(f"{where}: seconds {fields[1]!r} is not a number") from None
            _check_seconds(clip_seconds, where)
        if len(fields) > 2 and fields[2]:
            if not re.fullmatch(r"\d+", fields[2]):
                raise ConfigError(f"{where}: seed {fields[2]!r} is not an integer >= 0")
            clip_seed = int(fields[2])
        specs.append(ClipSpec(len(specs), number, prompt, clip_seconds, clip_seed))
    if not specs:
        raise ConfigError(f"{source} has no clips: write one prompt per line "
                          "('prompt[ | seconds[ | seed]]')")
    return specs


def read_prompts(path: str | Path, *, seconds: float = 4.0, seed: int = 0) -> list[ClipSpec]:
    """Read and parse a prompt file (see :func:`parse_prompts`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Notepad) is not prompt text
    except FileNotFoundError:
        raise ConfigError(f"prompt file {path} not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save "
                          "it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the prompt file {path}: {exc.strerror}") from None
    return parse_prompts(text, seconds=seconds, seed=seed, source=str(path))


def _read_index(path: Path) -> dict[int, dict[str, Any]]:
    """Entries of an existing index by clip index; nothing if there is none or it is broken."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s); every clip will be made again", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        raise ConfigError(f"{path} is not an hmu clip index; choose another --out directory")
    return {int(e["index"]): e for e in data.get("clips", [])
            if isinstance(e, dict) and isinstance(e.get("index"), int)}


def _is_done(entry: dict[str, Any] | None, spec: ClipSpec, sha: str, formats: tuple[str, ...],
             out_dir: Path, foot_cleanup: bool) -> bool:
    if entry is None:
        return False
    same = (entry.get("prompt"), entry.get("seed"), entry.get("seconds"),
            entry.get("bundle_sha256"), entry.get("foot_cleanup", False)) == \
        (spec.prompt, spec.seed, spec.seconds, sha, foot_cleanup)
    files = entry.get("files") or {}
    return same and all(files.get(f) == spec.file_name(f) and (out_dir / files[f]).is_file()
                        for f in formats)


def _write_index(path: Path, bundle: dict[str, Any], entries: dict[int, dict[str, Any]],
                 shard: dict[str, int] | None = None) -> None:
    data = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "bundle": bundle,
            "clips": [entries[i] for i in sorted(entries)]}
    write_json(path, data if shard is None else {**data, "shard": shard})


def _scene_exporter() -> Callable[..., Any]:
    """``exporter.scene.library.export_motion``; ConfigError if bpy is not installed."""
    if importlib.util.find_spec("bpy") is None:
        raise ConfigError("the fbx and glb formats need Blender's Python module: install it "
                          "(pip install bpy==5.0.1, Python 3.11) or run inside Blender, or "
                          "leave them out (--formats bvh,npz)")
    from exporter.scene.library import export_motion

    return export_motion


def _write_clip(motion: Motion, spec: ClipSpec, out_dir: Path, formats: tuple[str, ...],
                export_motion: Callable[..., Any] | None) -> dict[str, str]:
    writers = {"bvh": write_bvh, "npz": write_amass_npz}
    for fmt in formats:
        if fmt in writers:
            writers[fmt](out_dir / spec.file_name(fmt), motion)
    scene_targets = {f: out_dir / spec.file_name(f) for f in formats if f in BPY_FORMATS}
    if scene_targets:
        assert export_motion is not None  # checked before any clip is made
        export_motion(motion, scene_targets, action_name=spec.stem)
    return {fmt: spec.file_name(fmt) for fmt in formats}


def make_clips(prompts: str | Path | Sequence[ClipSpec], bundle: str | Path,
               out_dir: str | Path, params: ClipsParams | None = None, *,
               progress: Progress = no_progress,
               should_stop: Callable[[], bool] | None = None,
               source: str = "<prompts>", shard: Shard | None = None) -> ClipsReport:
    """Generate a clip library (see the module docstring), resuming a previous run.

    Args:
        prompts: a prompt file, or clips from :func:`parse_prompts`.
        bundle: the bundle directory (``hmu export``).
        out_dir: where the files and ``index.json`` go (created if missing).
        params: formats, device, default seconds and seed.
        progress: reports the clips made or found already made (stage ``clips``).
        should_stop: polled before each clip; True ends the run early (``report.stopped``).
        source: the name errors give to ``prompts`` when they are clips (a path names itself).
        shard: make only this shard's clips (index mod N), indexed in its own file
            ``index.shard-I-of-N.json`` (module docstring).
    Raises:
        ConfigError: bad prompt file (names the line), duration out of the model's range,
            fbx/glb without bpy, an ``out_dir`` that is a file or holds a foreign index.json.
        BundleError: a missing, changed or malformed bundle.
    """
    params = params or ClipsParams()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a directory")
    specs, source = _specs(prompts, params, source)
    export_motion = _scene_exporter() if set(params.formats) & set(BPY_FORMATS) else None
    generator = Generator(bundle, device=params.device, threads=params.threads,
                          trusted_keys=params.trusted_keys)
    for spec in specs:
        try:
            generator.tokens_from_seconds(spec.seconds)
        except ConfigError as exc:
            raise ConfigError(f"{source}:{spec.line}: {exc}") from None
    manifest = generator.bundle.manifest
    sha = generator.digest
    bundle_info = {"path": str(generator.bundle.path), "sha256": sha,
                   "model_kind": generator.kind, "unlearning": manifest.get("unlearning")}
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / (INDEX if shard is None else shard_index_name(shard))
    previous = _read_index(index_path)
    shard_info = None
    if shard is not None:
        specs = [s for s in specs if shard.owns(s.index)]
        previous = {**_read_index(out / INDEX), **previous}  # after a merge, too
        shard_info = {"index": shard.index, "count": shard.count}
    done = {s.index: {**previous[s.index], "line": s.line} for s in specs
            if _is_done(previous.get(s.index), s, sha, params.formats, out,
                        params.foot_cleanup)}
    report = ClipsReport(out_dir=out, index_path=index_path)
    start = time.perf_counter()
    _write_index(index_path, bundle_info, done, shard_info)
    for spec in track(specs, progress, "clips"):
        if should_stop is not None and should_stop():
            report.stopped = True
            break
        if spec.index in done:
            report.skipped.append(spec.stem)
        else:
            motion = generator.generate([spec.prompt], seconds=spec.seconds,
                                        seeds=[spec.seed]).motions[0]
            if params.foot_cleanup:
                motion = clean_feet(motion)
            motion = motion.with_smpl()  # provenance holds the bundle digest already
            files = _write_clip(motion, spec, out, params.formats, export_motion)
            done[spec.index] = {
                "index": spec.index, "line": spec.line, "prompt": spec.prompt,
                "seed": spec.seed, "seconds": spec.seconds, "frames": motion.num_frames,
                "fps": motion.fps, "files": files, "bundle_sha256": sha,
                "model_kind": generator.kind, "unlearning": manifest.get("unlearning"),
                "foot_cleanup": params.foot_cleanup,
            }
            _write_index(index_path, bundle_info, done, shard_info)
            report.generated.append(spec.stem)
    report.seconds = time.perf_counter() - start
    log.info("clips: %d generated, %d skipped in %.1f s", len(report.generated),
             len(report.skipped), report.seconds)
    return report


def _specs(prompts: str | Path | Sequence[ClipSpec], params: ClipsParams, source: str
           ) -> tuple[list[ClipSpec], str]:
    """The clips of a prompt file or a given list, and the name errors give their source."""
    if isinstance(prompts, str | Path):
        return read_prompts(prompts, seconds=params.seconds, seed=params.seed), str(prompts)
    return list(prompts), source


def merge_shards(prompts: str | Path | Sequence[ClipSpec], bundle: str | Path,
                 out_dir: str | Path, params: ClipsParams | None = None, *,
                 source: str = "<prompts>") -> Path:
    """Merge the shard indexes of ``out_dir`` into the ``index.json`` of one run.

    The shard count comes from the ``index.shard-I-of-N.json`` files; every clip of
    ``prompts`` must be finished in its shard (same prompt, seed, seconds and bundle, every
    format of ``params`` on disk). The shard indexes are removed once ``index.json`` is
    written. Needs neither onnxruntime nor the bundle's graphs, only its manifest.

    Returns:
        the path of ``index.json``.
    Raises:
        ConfigError: no shard index, shard indexes of several counts, a missing shard, a clip
            missing or out of date (names the shard to rerun).
        BundleError: the bundle has no manifest.
    """
    params = params or ClipsParams()
    out = Path(out_dir)
    specs, source = _specs(prompts, params, source)
    manifest = Path(bundle) / "manifest.json"
    if not manifest.is_file():
        raise BundleError(f"{bundle} is not a bundle (no manifest.json); give the --bundle the "
                          f"shards used")
    sha = read_bundle(bundle, trusted_keys=params.trusted_keys).digest
    files = {(int(m[1]), int(m[2])): p for p in (sorted(out.iterdir()) if out.is_dir() else [])
             if (m := SHARD_INDEX.fullmatch(p.name))}
    counts = sorted({n for _, n in files})
    if not counts:
        raise ConfigError(f"{out} holds no shard index (index.shard-I-of-N.json): run the "
                          f"'hmu clips ... --shard I/N' jobs into it first, then merge")
    if len(counts) > 1:
        raise ConfigError(f"{out} holds shard indexes of several shard counts (N = "
                          f"{', '.join(map(str, counts))}); keep those of one N, then merge")
    count = counts[0]
    missing = [i for i in range(count) if (i, count) not in files]
    if missing:
        raise ConfigError(f"{out}: shard(s) {', '.join(f'{i}/{count}' for i in missing)} have "
                          f"not run (no index.shard-I-of-{count}.json); run them, then merge")
    entries: dict[int, dict[str, Any]] = {}
    bundle_info: dict[str, Any] = {}
    for i in range(count):
        path = files[(i, count)]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is unreadable ({exc}); rerun shard {i}/{count}") from None
        if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT \
                or (data.get("shard") or {}).get("count") != count:
            raise ConfigError(f"{path} is not an index of shard {i}/{count}; remove it")
        if data["bundle"].get("sha256") != sha:
            raise ConfigError(f"shard {i}/{count} used another bundle ({path}); rerun it with "
                              f"--bundle {bundle}")
        bundle_info = bundle_info or data["bundle"]
        entries.update({e["index"]: e for e in data.get("clips", [])
                        if isinstance(e, dict) and isinstance(e.get("index"), int)
                        and e["index"] % count == i})
    for spec in specs:
        if not _is_done(entries.get(spec.index), spec, sha, params.formats, out,
                        params.foot_cleanup):
            raise ConfigError(f"{source}:{spec.line}: clip {spec.stem} is missing or out of date "
                              f"in shard {spec.index % count}/{count}; rerun that shard, then "
                              f"merge")
    index_path = out / INDEX
    _write_index(index_path, bundle_info, {s.index: {**entries[s.index], "line": s.line}
                                           for s in specs})
    for path in files.values():
        path.unlink()
    log.info("merged %d shard indexes (%d clips) into %s", count, len(specs), index_path)
    return index_path
