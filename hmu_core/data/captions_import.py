"""Write a captions-only HumanML3D-layout directory from a ``.jsonl.gz`` caption corpus.

The corpus (``shared/data/humanml3d_texts.jsonl.gz``) holds one JSON object per motion id,
``{"id": "000000", "lines": ["caption#tokens#start#end", ...]}``, and sits beside a JSON file
with its checksums (``humanml3d_texts.json``: ``sha256_gz``, ``sha256_uncompressed_jsonl``) and
the split files. The import verifies both checksums before writing anything, then writes
``texts/<id>.txt`` plus the split files into a temporary directory that is renamed onto the
target only when complete. The result has no ``new_joint_vecs/``: splits and statistics work
on it, training does not. Torch-free.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from hmu_core.atomic import atomic_directory, write_json
from hmu_core.data.humanml3d import SPLITS, parse_caption_line, read_id_file
from hmu_core.errors import DataError

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_captions` wrote.

    Attributes:
        out_dir: the new dataset directory.
        n_ids: caption files written.
        n_lines: caption lines written.
        splits: split name -> number of ids copied.
        sha256_gz: verified checksum of the corpus file.
    """

    out_dir: Path
    n_ids: int
    n_lines: int
    splits: dict[str, int]
    sha256_gz: str


def checksum_file_for(corpus: Path) -> Path:
    """The checksum JSON beside a corpus: ``name.jsonl.gz`` -> ``name.json``."""
    name = corpus.name
    for suffix in (".jsonl.gz", ".json.gz", ".gz"):
        if name.endswith(suffix):
            return corpus.with_name(name[: -len(suffix)] + ".json")
    return corpus.with_suffix(".json")


def _load_expected(checksums: Path) -> dict[str, str]:
    if not checksums.is_file():
        raise DataError(
            f"checksum file {checksums} is missing; pass --checksums PATH (the JSON with"
            " sha256_gz) or --no-verify to import an unverified corpus"
        )
    try:
        meta = json.loads(checksums.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"checksum file {checksums} is not valid JSON: {error}") from error
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256_gz"), str):
        raise DataError(f"checksum file {checksums} has no 'sha256_gz' entry")
    return meta


def _parse_corpus(raw: bytes, corpus: Path) -> dict[str, list[str]]:
    """Decode the JSON lines; every caption line is checked with the reader's parser."""
    table: dict[str, list[str]] = {}
    for number, text in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not text.strip():
            continue
        where = f"{corpus} record {number}"
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: not valid JSON ({error})") from error
        motion_id = record.get("id") if isinstance(record, dict) else None
        lines = record.get("lines") if isinstance(record, dict) else None
        if not isinstance(motion_id, str) or not _ID.match(motion_id):
            raise DataError(f"{where}: missing or invalid 'id' {motion_id!r}")
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise DataError(f"{where}: 'lines' must be a list of strings (id {motion_id})")
        if motion_id in table:
            raise DataError(f"{where}: id {motion_id} appears twice")
        for index, line in enumerate(lines, 1):
            parse_caption_line(line, f"{where} (id {motion_id}) line {index}")
        table[motion_id] = lines
    if not table:
        raise DataError(f"{corpus} holds no caption records")
    return table


def import_captions(
    corpus: str | Path,
    out_dir: str | Path,
    checksums: str | Path | None = None,
    splits_dir: str | Path | None = None,
    verify: bool = True,
    overwrite: bool = False,
) -> ImportResult:
    """Write ``out_dir`` (texts/ + split files) from a caption corpus, checksum verified.

    Args:
        corpus: the ``.jsonl.gz`` file.
        out_dir: the directory to create (replaced only with ``overwrite``).
        checksums: the JSON with ``sha256_gz`` (and optionally ``sha256_uncompressed_jsonl``);
            default: the JSON beside the corpus (:func:`checksum_file_for`).
        splits_dir: where the split files ``all.txt`` ... are; default: the corpus's folder.
            Missing split files are skipped with a log line; ``all.txt`` is required.
        verify: check the checksums (turn off only for a corpus you made yourself).
        overwrite: replace an existing ``out_dir``.

    Raises:
        DataError: missing corpus or checksum file, checksum mismatch, a malformed record or
            caption line, a split id without captions, or ``out_dir`` exists.
    """
    corpus = Path(corpus)
    out_dir = Path(out_dir)
    if not corpus.is_file():
        raise DataError(f"caption corpus {corpus} does not exist")
    if out_dir.exists() and not overwrite:
        raise DataError(f"{out_dir} already exists; choose another --out or pass --overwrite")
    packed = corpus.read_bytes()
    digest = hashlib.sha256(packed).hexdigest()
    expected: dict[str, str] = {}
    checksum_path = Path(checksums) if checksums else checksum_file_for(corpus)
    if verify:
        expected = _load_expected(checksum_path)
        if digest != expected["sha256_gz"]:
            raise DataError(
                f"{corpus}: sha256 {digest} does not match {expected['sha256_gz']} from"
                f" {checksum_path}; the file is corrupted or not the published corpus"
                " (download it again)"
            )
    try:
        raw = gzip.decompress(packed)
    except (OSError, EOFError) as error:
        raise DataError(f"{corpus} is not a readable gzip file: {error}") from error
    if isinstance(expected.get("sha256_uncompressed_jsonl"), str):
        inner = hashlib.sha256(raw).hexdigest()
        if inner != expected["sha256_uncompressed_jsonl"]:
            raise DataError(f"{corpus}: uncompressed sha256 {inner} does not match {checksum_path}")
    table = _parse_corpus(raw, corpus)

    source_splits = Path(splits_dir) if splits_dir else corpus.parent
    split_ids: dict[str, list[str]] = {}
    for name in SPLITS:
        path = source_splits / f"{name}.txt"
        if not path.is_file():
            if name == "all":
                raise DataError(f"{path} is missing; pass --splits-from DIR with all.txt")
            log.info("no %s beside the corpus; %s.txt not written", path.name, name)
            continue
        ids = read_id_file(path)
        missing = [i for i in ids if i not in table]
        if missing:
            raise DataError(f"{path}: {len(missing)} ids have no captions in {corpus}, e.g."
                            f" {', '.join(missing[:5])}")
        split_ids[name] = ids

    n_lines = 0
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        texts = tmp / "texts"
        texts.mkdir()
        # Plain writes inside the temporary directory: the rename of the whole directory is
        # the atomic step, and 29k fsyncs would take minutes.
        for motion_id, lines in table.items():
            (texts / f"{motion_id}.txt").write_text(
                "".join(line + "\n" for line in lines), encoding="utf-8"
            )
            n_lines += len(lines)
        for name in split_ids:
            shutil.copyfile(source_splits / f"{name}.txt", tmp / f"{name}.txt")
        write_json(
            tmp / "captions_source.json",
            {
                "corpus": corpus.name,
                "sha256_gz": digest,
                "verified": verify,
                "ids": len(table),
                "lines": n_lines,
                "splits": {k: len(v) for k, v in split_ids.items()},
                "note": "captions-only HumanML3D-layout directory written by"
                " 'hmu data import-captions'; no motions",
            },
        )
    log.info("wrote %d caption files (%d lines) to %s", len(table), n_lines, out_dir)
    return ImportResult(out_dir, len(table), n_lines, {k: len(v) for k, v in split_ids.items()},
                        digest)
