"""Reader for a dataset in the HumanML3D on-disk layout (``reference/humanml3d.md`` §1).

::

    root/
      new_joint_vecs/<id>.npy   (T-1, 263) float32 features      (optional: captions-only sets)
      new_joints/<id>.npy       (T-1, 22, 3) float32 joints, metres, Y-up      (optional)
      texts/<id>.txt            one ``caption#word/POS ...#start#end`` line per annotation
      Mean.npy, Std.npy         (263,) normalisation statistics                (optional)
      train.txt val.txt test.txt train_val.txt all.txt   one id per line

Real HumanML3D, Motion-X converted to this layout (as the paper did) and hmu's synthetic set
all go through this one reader. Every missing or malformed input raises ``DataError`` naming the
file, the line when there is one, and the problem.

Splits and statistics only need the raw caption lines (:meth:`HumanML3D.caption_lines`, what
the official grep sees), so they also work on Motion-X ``semantic_labels`` sentences that
have no ``#`` fields; :meth:`HumanML3D.captions` parses the full format and is strict.
Torch-free.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmu_core.errors import DataError

log = logging.getLogger(__name__)

FPS = 20
"""HumanML3D frames per second (time tags in ``texts/`` are seconds at this rate)."""

SPLITS = ("train", "val", "test", "train_val", "all")
"""The official split files, ``<name>.txt`` in the dataset root."""


@dataclass(frozen=True)
class Caption:
    """One annotation line of ``texts/<id>.txt``.

    Attributes:
        text: the lower-case sentence.
        tokens: (word, UPOS) pairs of the spaCy tokens; NOUN/VERB words are lemmas.
        start: start of the described span in seconds (``nan`` read as 0.0).
        end: end of the span in seconds (``nan`` read as 0.0); start == end == 0 is the whole
            clip.
        line: the raw line, as matched by the official split scripts.
    """

    text: str
    tokens: tuple[tuple[str, str], ...]
    start: float
    end: float
    line: str

    @property
    def whole_clip(self) -> bool:
        """True when the caption describes the entire clip (both tags 0)."""
        return self.start == 0.0 and self.end == 0.0

    def frame_span(self, n_frames: int, fps: int = FPS) -> tuple[int, int]:
        """``[begin, end)`` feature frames the caption covers, as the official loaders cut them.

        ``motion[int(start*fps):int(end*fps)]``, with a 0 tag meaning the clip start/end.
        """
        if self.whole_clip:
            return 0, n_frames
        begin = int(self.start * fps) if self.start > 0 else 0
        end = int(self.end * fps) if self.end > 0 else n_frames
        return begin, min(end, n_frames)


def _parse_time(value: str, where: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError as error:
        raise DataError(f"{where}: {name} time {value!r} is not a number of seconds") from error
    if math.isnan(number):
        return 0.0  # the official loaders read nan as 0
    if number < 0 or math.isinf(number):
        raise DataError(f"{where}: {name} time {value!r} must be a finite number >= 0")
    return number


def parse_caption_line(line: str, where: str = "<caption>") -> Caption:
    """Parse one ``caption#tokens#start#end`` line.

    Args:
        where: the location used in error messages, e.g. ``"texts/000001.txt line 3"``.

    Raises:
        DataError: wrong number of fields, a token without ``/POS``, or a bad time tag.
    """
    raw = line.rstrip("\r\n")
    fields = raw.split("#")
    if len(fields) != 4:
        raise DataError(
            f"{where}: expected 4 '#'-separated fields (caption#tokens#start#end),"
            f" found {len(fields)} in {raw[:80]!r}"
        )
    text, token_field, start, end = fields
    if not text.strip():
        raise DataError(f"{where}: the caption field is empty")
    tokens: list[tuple[str, str]] = []
    for item in token_field.split():
        word, sep, pos = item.rpartition("/")
        if not sep or not word or not pos:
            raise DataError(f"{where}: token {item!r} is not of the form word/POS")
        tokens.append((word, pos))
    return Caption(
        text=text.strip(),
        tokens=tuple(tokens),
        start=_parse_time(start, where, "start"),
        end=_parse_time(end, where, "end"),
        line=raw,
    )


def read_id_file(path: Path) -> list[str]:
    """Ids of a split file, one per line, blank lines ignored, order kept.

    Raises:
        DataError: the file is missing, empty, or an id repeats or contains whitespace.
    """
    if not path.is_file():
        raise DataError(f"split file {path} is missing; a HumanML3D-layout directory has"
                        f" {', '.join(s + '.txt' for s in SPLITS)}")
    ids: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        motion_id = line.strip()
        if not motion_id:
            continue
        if any(ch.isspace() for ch in motion_id) or "/" in motion_id:
            raise DataError(f"{path} line {number}: {motion_id!r} is not a clip id")
        if motion_id in seen:
            raise DataError(f"{path} line {number}: id {motion_id} is listed twice")
        seen.add(motion_id)
        ids.append(motion_id)
    if not ids:
        raise DataError(f"split file {path} lists no ids")
    return ids


class HumanML3D:
    """A HumanML3D-layout dataset directory.

    Args:
        root: the dataset directory.
        feature_dim: expected feature size (263 for HumanML3D and 263-d Motion-X); ``None``
            takes it from ``Mean.npy`` when present, else 263.
        n_joints: expected joint count of ``new_joints`` (22).

    Raises:
        DataError: ``root`` or its ``texts/`` folder does not exist.
    """

    def __init__(self, root: str | Path, feature_dim: int | None = None, n_joints: int = 22):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"dataset directory {self.root} does not exist")
        self.texts_dir = self.root / "texts"
        if not self.texts_dir.is_dir():
            raise DataError(
                f"{self.texts_dir} is missing: a HumanML3D-layout dataset needs texts/<id>.txt"
                " caption files (unzip texts.zip of HumanML3D, or run 'hmu data import-captions')"
            )
        self.features_dir = self.root / "new_joint_vecs"
        self.joints_dir = self.root / "new_joints"
        self.n_joints = n_joints
        self._feature_dim = feature_dim
        # Raw and parsed captions by id: a pass over HumanML3D reads ~29,000 files, and the
        # concept split, statistics, cache keys and evaluation each make one.
        self._lines: dict[str, tuple[tuple[int, str], ...]] = {}
        self._captions: dict[str, tuple[Caption, ...]] = {}

    # ------------------------------------------------------------------ layout
    @property
    def has_motions(self) -> bool:
        """False for a captions-only directory (no ``new_joint_vecs/`` with any ``.npy``)."""
        if not self.features_dir.is_dir():
            return False
        return next(self.features_dir.glob("*.npy"), None) is not None

    @property
    def feature_dim(self) -> int:
        """Feature size: as given, else from ``Mean.npy``, else 263."""
        if self._feature_dim is None:
            path = self.root / "Mean.npy"
            self._feature_dim = int(self._load_stat(path).shape[0]) if path.is_file() else 263
        return self._feature_dim

    def ids(self, split: str = "all") -> list[str]:
        """Ids of ``<split>.txt`` (``train``, ``val``, ``test``, ``train_val``, ``all`` or any
        other ``<name>.txt`` in the root, e.g. a forget split), in file order."""
        name = split[:-4] if split.endswith(".txt") else split
        return read_id_file(self.root / f"{name}.txt")

    def has_captions(self, motion_id: str) -> bool:
        """True if ``texts/<id>.txt`` exists."""
        return (self.texts_dir / f"{motion_id}.txt").is_file()

    # ------------------------------------------------------------------ captions
    def _numbered_lines(self, motion_id: str) -> tuple[tuple[int, str], ...]:
        """Non-blank lines of ``texts/<id>.txt`` with their line numbers (read once)."""
        cached = self._lines.get(motion_id)
        if cached is not None:
            return cached
        path = self.texts_dir / f"{motion_id}.txt"
        try:
            content = path.read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise DataError(f"caption file {path} is missing (id {motion_id})") from error
        except UnicodeDecodeError as error:
            raise DataError(f"caption file {path} is not UTF-8 text: {error}") from error
        cached = tuple(
            (number, line.rstrip("\r"))
            for number, line in enumerate(content.split("\n"), 1)
            if line.strip()
        )
        self._lines[motion_id] = cached
        return cached

    def caption_lines(self, motion_id: str) -> list[str]:
        """Raw non-blank lines of ``texts/<id>.txt`` (what the official grep matches), read
        once per instance.

        Raises:
            DataError: the file is missing or not UTF-8.
        """
        return [line for _, line in self._numbered_lines(motion_id)]

    def captions(self, motion_id: str) -> list[Caption]:
        """Parsed captions of one clip, in file order (read once per instance).

        Raises:
            DataError: missing file, a malformed line (file and line number named), or no
                caption at all.
        """
        cached = self._captions.get(motion_id)
        if cached is None:
            path = self.texts_dir / f"{motion_id}.txt"
            lines = self._numbered_lines(motion_id)
            if not lines:
                raise DataError(f"caption file {path} holds no caption line")
            cached = tuple(parse_caption_line(line, f"{path} line {number}")
                           for number, line in lines)
            self._captions[motion_id] = cached
        return list(cached)

    def caption_table(
        self, ids: Iterable[str], missing_ok: bool = False
    ) -> tuple[dict[str, list[str]], list[str]]:
        """Raw caption lines of many ids: (id -> lines, ids without a caption file).

        Raises:
            DataError: an id has no caption file and ``missing_ok`` is false.
        """
        table: dict[str, list[str]] = {}
        missing: list[str] = []
        for motion_id in ids:
            if not self.has_captions(motion_id):
                if not missing_ok:
                    raise DataError(
                        f"caption file {self.texts_dir / (motion_id + '.txt')} is missing"
                        f" (id {motion_id} is in the split file)"
                    )
                missing.append(motion_id)
                continue
            table[motion_id] = self.caption_lines(motion_id)
        return table, missing

    # ------------------------------------------------------------------ motions
    def _require_motions(self, folder: Path) -> None:
        if not folder.is_dir():
            raise DataError(
                f"{folder} is missing: {self.root} is a captions-only dataset; splits and stats"
                " work on it, training and evaluation need the motion files"
            )

    def _load(self, path: Path) -> np.ndarray:
        try:
            array = np.load(path, allow_pickle=False)
        except FileNotFoundError as error:
            raise DataError(f"motion file {path} is missing") from error
        except ValueError as error:
            raise DataError(f"{path} is not a plain .npy array: {error}") from error
        return array

    def features(self, motion_id: str, check_finite: bool = True) -> np.ndarray:
        """``new_joint_vecs/<id>.npy``: (T-1, feature_dim) float32, HumanML3D features.

        Args:
            check_finite: raise on NaN/inf (the datasets turn this off and skip such clips).

        Raises:
            DataError: missing file, wrong shape, or non-finite values (the official 007975
                contains NaNs; the official Mean/Std skip it).
        """
        self._require_motions(self.features_dir)
        path = self.features_dir / f"{motion_id}.npy"
        array = self._load(path)
        if array.ndim != 2 or array.shape[1] != self.feature_dim or array.shape[0] < 1:
            raise DataError(
                f"{path}: expected shape (frames, {self.feature_dim}), found {array.shape}"
            )
        if check_finite and not np.isfinite(array).all():
            raise DataError(f"{path}: contains NaN or infinite values; leave this id out")
        return array.astype(np.float32, copy=False)

    def joints(self, motion_id: str) -> np.ndarray:
        """``new_joints/<id>.npy``: (T-1, 22, 3) float32 joint positions, metres, Y-up.

        Raises:
            DataError: missing file or wrong shape.
        """
        self._require_motions(self.joints_dir)
        path = self.joints_dir / f"{motion_id}.npy"
        array = self._load(path)
        if array.ndim != 3 or array.shape[1:] != (self.n_joints, 3):
            raise DataError(f"{path}: expected shape (frames, {self.n_joints}, 3), found"
                            f" {array.shape}")
        return array.astype(np.float32, copy=False)

    def _load_stat(self, path: Path) -> np.ndarray:
        if not path.is_file():
            raise DataError(f"{path} is missing; the dataset's normalisation statistics are"
                            " needed (compute them over new_joint_vecs, or copy the official ones)")
        array = self._load(path)
        if array.ndim != 1:
            raise DataError(f"{path}: expected a 1-d array, found shape {array.shape}")
        return array

    def mean(self) -> np.ndarray:
        """``Mean.npy``: (feature_dim,) float32 per-dim mean over all frames."""
        array = self._load_stat(self.root / "Mean.npy")
        if array.shape[0] != self.feature_dim:
            raise DataError(f"{self.root / 'Mean.npy'}: expected ({self.feature_dim},), found"
                            f" {array.shape}")
        return array.astype(np.float32)

    def std(self) -> np.ndarray:
        """``Std.npy``: (feature_dim,) float32 group-averaged std (dataset stats, not meta).

        Raises:
            DataError: missing, wrong shape, or a non-positive entry (would divide by zero).
        """
        path = self.root / "Std.npy"
        array = self._load_stat(path)
        if array.shape[0] != self.feature_dim:
            raise DataError(f"{path}: expected ({self.feature_dim},), found {array.shape}")
        if not (np.isfinite(array).all() and (array > 0).all()):
            raise DataError(f"{path}: every std entry must be finite and > 0")
        return array.astype(np.float32)
