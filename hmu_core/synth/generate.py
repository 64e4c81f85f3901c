"""Write the synthetic benchmark in the HumanML3D layout (``hmu data synth``).

Per clip: plan -> joints by FK (:func:`hmu_core.synth.motions.animate_clip`) -> 263-d features
(:func:`hmu_core.motion.features.joints_to_features`, the official ``process_file``) ->
``new_joints`` recovered from the features (:func:`~hmu_core.motion.features.features_to_joints`,
as HumanML3D stores ``recover_from_ric`` output) -> captions
(:func:`hmu_core.synth.captions.caption_clip`). Then Mean/Std over every feature frame, the split
files and the metadata:

* ``synth_meta.json``: generator version, seed, size, shares, the family catalogue, counts;
* ``clips.jsonl``: one JSON object per clip: id, label, toxic, frame counts, bone scale,
  segments ``[{family, toxic, start, end, params}]`` (joint frames at 20 fps) and the concept
  keywords its captions contain;
* ``implicit_captions.json``: toxic family -> held-apart captions without any keyword.

Every clip draws from its own Generator seeded by (dataset seed, clip index), so a clip does not
depend on the others and the same seed gives byte-identical files.
"""

from __future__ import annotations

import ctypes
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hmu_core.atomic import atomic_directory, npy_bytes
from hmu_core.data.concepts import BUILTIN_CONCEPTS, MatchMode, matched_keywords
from hmu_core.errors import ConfigError, DataError
from hmu_core.motion.features import features_to_joints, joints_to_features
from hmu_core.motion.skeleton import FEATURE_DIM, FPS
from hmu_core.progress import Progress, no_progress, track
from hmu_core.synth.captions import caption_clip, implicit_captions
from hmu_core.synth.families import COMPOSITE_PATTERNS, FAMILIES, ClipPlan
from hmu_core.synth.motions import animate_clip
from hmu_core.synth.plan import plan_dataset

log = logging.getLogger(__name__)

GENERATOR_VERSION = "2"
"""Bumped whenever the same seed would produce different files."""

STD_FLOOR = 1e-3
"""Smallest Std.npy value: a feature group that never varies (e.g. contacts in a tiny set of
still clips) would otherwise divide by zero when normalising."""

STD_GROUPS = ((0, 1), (1, 3), (3, 4), (4, 67), (67, 193), (193, 259), (259, 263))
"""Feature groups whose std is averaged, as the official ``cal_mean_variance`` does
(``reference/humanml3d.md`` §6)."""

KEYWORD_CONCEPT = "violence_motionx"
"""Concept whose keywords (word mode) are listed per clip in ``clips.jsonl``."""


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`write_synthetic_dataset` wrote."""

    out_dir: Path
    clips: int
    toxic_clips: int
    feature_frames: int
    seconds: float


@dataclass(frozen=True)
class ClipData:
    """One generated clip: features (T-1, 263), joints (T-1, 22, 3), caption lines."""

    features: np.ndarray
    joints: np.ndarray
    lines: tuple[str, ...]


def generate_clip(plan: ClipPlan) -> ClipData:
    """Generate one planned clip from its own seed (independent of every other clip)."""
    motion_seq, caption_seq = np.random.SeedSequence(plan.seed).spawn(2)
    positions = animate_clip(plan, np.random.default_rng(motion_seq))
    features = joints_to_features(positions)
    joints = features_to_joints(features)
    lines = caption_clip(plan, np.random.default_rng(caption_seq))
    return ClipData(features, joints, tuple(line.to_line() for line in lines))


def _clip_record(plan: ClipPlan, data: ClipData) -> dict:
    concept = BUILTIN_CONCEPTS[KEYWORD_CONCEPT]
    keywords = sorted({k for line in data.lines
                       for k in matched_keywords(line, concept, MatchMode.WORD)})
    return {
        "id": plan.clip_id, "label": plan.label, "toxic": plan.toxic,
        "joint_frames": plan.num_frames, "feature_frames": int(data.features.shape[0]),
        "bone_scale": round(plan.bone_scale, 6), "seed": plan.seed,
        "segments": [{"family": s.family, "toxic": s.toxic, "start": s.start, "end": s.end,
                      "params": s.params} for s in plan.segments],
        "caption_keywords": keywords,
    }


def _std(sum_: np.ndarray, sumsq: np.ndarray, count: int) -> np.ndarray:
    var = np.maximum(sumsq / count - (sum_ / count) ** 2, 0.0)
    std = np.sqrt(var)
    for lo, hi in STD_GROUPS:
        std[lo:hi] = std[lo:hi].mean()
    return np.maximum(std, STD_FLOOR).astype(np.float32)


def _save_npy(path: Path, array: np.ndarray) -> None:
    # Plain writes are enough inside the temporary directory: atomic_directory renames the
    # whole directory into place only once every file is complete.
    path.write_bytes(npy_bytes(array))


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def _meta(size: str | int, seed: int, toxic_share: float, composite_share: float,
          records: list[dict]) -> dict:
    labels = Counter(r["label"] for r in records)
    return {
        "generator": "hmu.synth", "version": GENERATOR_VERSION, "seed": int(seed),
        "size": size, "toxic_share": toxic_share, "composite_share": composite_share,
        "fps": FPS, "feature_dim": FEATURE_DIM,
        "families": [{**asdict(f), "params": {k: list(v) for k, v in f.params.items()},
                      "seconds": list(f.seconds)} for f in FAMILIES],
        "composite_patterns": [list(p) for p in COMPOSITE_PATTERNS],
        "counts": {"clips": len(records), "toxic_clips": sum(r["toxic"] for r in records),
                   "feature_frames": sum(r["feature_frames"] for r in records),
                   "composite_clips": sum(len(r["segments"]) > 1 for r in records),
                   "per_label": dict(sorted(labels.items()))},
        "files": {"clips": "clips.jsonl", "implicit_captions": "implicit_captions.json"},
    }


_PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal a process gets when the thread that forked it dies (Linux)."""


def _init_worker(parent: int) -> None:
    """Pool-worker initializer: Ctrl-C is the parent's alone, and a worker dies with the
    process that started it.

    A terminal's Ctrl-C reaches the whole process group. A worker interrupted inside the pool's
    own machinery (taking its next task, sending a result) can leave the pool waiting on it:
    on a loaded machine an interrupted run sometimes hung for 20 s and more. So workers ignore
    SIGINT; the parent stops and terminates them.

    Dying with the parent covers ``kill -9`` (which runs no clean-up and would leave the workers
    running, re-parented, generating clips nobody reads): Linux gets ``PR_SET_PDEATHSIG``
    (immediate); every platform also gets a daemon thread that exits once the parent pid
    changes (within a second).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="hmu-parent-watch", daemon=True).start()


def write_synthetic_dataset(out_dir: str | Path, size: str | int = "tiny", seed: int = 0,
                            toxic_share: float = 0.08, overwrite: bool = False,
                            progress: Progress = no_progress,
                            composite_share: float = 0.15, workers: int = 1) -> SynthSummary:
    """Generate and write a synthetic dataset in the HumanML3D layout.

    Args:
        out_dir: directory to create (written as a whole: it appears only when complete).
        size: 'tiny', 'small', 'full' or a clip count (see :func:`plan_dataset`).
        seed: fixes everything; the same seed writes byte-identical files.
        toxic_share: share of clips with a toxic segment.
        overwrite: replace an existing ``out_dir``.
        progress: reports the clips written (stage ``writing clips``).
        composite_share: share of two-segment clips.
        workers: processes generating clips in parallel; the files do not depend on it (every
            clip has its own seed and results are gathered in id order).

    Returns:
        Counts and timing of what was written.

    Raises:
        DataError: ``out_dir`` exists and ``overwrite`` is false.
        ConfigError: unknown size, shares out of range, a seed that is not an integer >= 0,
            or fewer than one worker.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists; choose another directory or pass overwrite "
                        "(--overwrite) to replace it")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"the seed must be an integer >= 0, got {seed!r}")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    plan = plan_dataset(size, seed, toxic_share, composite_share)
    start = time.perf_counter()
    sum_ = np.zeros(FEATURE_DIM)
    sumsq = np.zeros(FEATURE_DIM)
    count = 0
    records: list[dict] = []
    with atomic_directory(out, overwrite=overwrite) as tmp, ExitStack() as stack:
        for sub in ("new_joint_vecs", "new_joints", "texts"):
            (tmp / sub).mkdir()
        if workers > 1:
            # A Pool, whose exit terminates its workers: on Ctrl-C or an error nothing waits
            # for queued or half-made clips (ProcessPoolExecutor's exit waited for them: an
            # interrupted 'small' run could take a minute, or hang under load). On success
            # every result has been read before the exit.
            pool = stack.enter_context(multiprocessing.Pool(
                workers, initializer=_init_worker, initargs=(os.getpid(),)))
            results: Iterable[ClipData] = pool.imap(generate_clip, plan.clips, chunksize=8)
        else:
            results = map(generate_clip, plan.clips)
        for clip, data in track(zip(plan.clips, results, strict=True), progress,
                                "writing clips", len(plan.clips)):
            _save_npy(tmp / "new_joint_vecs" / f"{clip.clip_id}.npy", data.features)
            _save_npy(tmp / "new_joints" / f"{clip.clip_id}.npy", data.joints)
            _write_text(tmp / "texts" / f"{clip.clip_id}.txt", "\n".join(data.lines) + "\n")
            feats = data.features.astype(np.float64)
            sum_ += feats.sum(axis=0)
            sumsq += (feats**2).sum(axis=0)
            count += feats.shape[0]
            records.append(_clip_record(clip, data))
        _save_npy(tmp / "Mean.npy", (sum_ / count).astype(np.float32))
        _save_npy(tmp / "Std.npy", _std(sum_, sumsq, count))
        for name, ids in plan.splits.items():
            _write_text(tmp / f"{name}.txt", "".join(f"{i}\n" for i in ids))
        _write_text(tmp / "clips.jsonl",
                    "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        meta = _meta(size, seed, toxic_share, composite_share, records)
        _write_text(tmp / "synth_meta.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
        implicit = {k: list(v) for k, v in implicit_captions().items()}
        _write_text(tmp / "implicit_captions.json",
                    json.dumps(implicit, indent=2, sort_keys=True) + "\n")
    seconds = time.perf_counter() - start
    summary = SynthSummary(out, len(records), meta["counts"]["toxic_clips"], count, seconds)
    log.info("wrote %d synthetic clips (%d toxic, %d frames) to %s in %.1f s", summary.clips,
             summary.toxic_clips, count, out, seconds)
    return summary


def read_clip_records(root: str | Path) -> dict[str, dict]:
    """``clips.jsonl`` of a synthetic dataset as id -> record.

    Raises:
        DataError: the file is missing or a line is not valid JSON.
    """
    path = Path(root) / "clips.jsonl"
    if not path.is_file():
        raise DataError(f"{path} not found; is {root} a synthetic dataset written by "
                        "'hmu data synth'?")
    records = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: not valid JSON ({error.msg}); regenerate the "
                            "dataset") from error
        records[record["id"]] = record
    return records
