"""Write forget/retain id files of a HumanML3D-layout dataset, as the official HMU scripts do.

For every split file (``train_val``, ``test``, ...) and every concept ``c`` this writes
``<split>-w-<c>.txt`` (forget: ids whose captions match ``c``) and ``<split>-wo-<c>.txt``
(retain), one id per line in the split file's order, the names of the official
``kw_splits/`` folder (``reference/momask.md`` §0.2). With several concepts, the union is
written too under ``union_name``. A ``split_summary.json`` records the counts, the mode and
the concept definitions. Every file is written atomically. Torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmu_core.atomic import write_json, write_text
from hmu_core.data.concepts import Concept, ConceptSplit, MatchMode
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError
from hmu_core.progress import Progress, no_progress, track

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class SplitFiles:
    """Files written for one split file.

    Attributes:
        split: the split name (``train_val``).
        forget: set name -> number of forget ids.
        retain: set name -> number of retain ids.
        missing_captions: ids of the split without a ``texts/`` file (left out, logged).
    """

    split: str
    forget: dict[str, int]
    retain: dict[str, int]
    missing_captions: tuple[str, ...]


def _ids_text(ids: Sequence[str]) -> str:
    return "".join(f"{i}\n" for i in ids)


def write_concept_splits(
    dataset: HumanML3D,
    splits: Sequence[str],
    concepts: Sequence[Concept],
    mode: MatchMode | str,
    out_dir: str | Path,
    min_occurrences: int | None = None,
    union_name: str = "union",
    progress: Progress = no_progress,
) -> list[SplitFiles]:
    """Write ``<split>-w-<concept>.txt`` / ``<split>-wo-<concept>.txt`` for every split.

    Args:
        dataset: the dataset (captions-only is fine).
        splits: split file names, e.g. ``["train_val", "test"]``.
        out_dir: output folder (the official place is ``<dataset>/kw_splits``).
        progress: optional wrapper for the id loop (the CLI passes tqdm).

    Raises:
        ConfigError: no split given, or ``union_name`` equals a concept name.
        DataError: a split file is missing or malformed.
    """
    if not splits:
        raise ConfigError("give at least one split (e.g. train_val test)")
    splitter = ConceptSplit(concepts, mode, min_occurrences)
    if len(splitter.concepts) > 1 and union_name in {c.name for c in splitter.concepts}:
        raise ConfigError(f"union name {union_name!r} is also a concept name; pick another")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[SplitFiles] = []
    summary: dict[str, Any] = {
        "dataset": str(dataset.root),
        "mode": splitter.mode.value,
        "has_motions": dataset.has_motions,
        "concepts": {
            c.name: {"keywords": list(c.keywords), "min_occurrences": c.min_occurrences}
            for c in splitter.concepts
        },
        "splits": {},
    }
    for split in splits:
        ids = dataset.ids(split)
        wrapped = track(ids, progress, f"reading {split} captions")
        captions, missing = dataset.caption_table(wrapped, missing_ok=True)
        if missing:
            log.warning("%s: %d ids without caption files were left out (e.g. %s)", split,
                        len(missing), ", ".join(missing[:3]))
        result = splitter.split(captions)
        sets: dict[str, tuple[str, ...]] = dict(result.concept_forget)
        if len(splitter.concepts) > 1:
            sets[union_name] = result.forget_ids
        forget_n: dict[str, int] = {}
        retain_n: dict[str, int] = {}
        for name, forget_ids in sets.items():
            chosen = set(forget_ids)
            retain_ids = [i for i in captions if i not in chosen]
            write_text(out / f"{split}-w-{name}.txt", _ids_text(forget_ids))
            write_text(out / f"{split}-wo-{name}.txt", _ids_text(retain_ids))
            forget_n[name], retain_n[name] = len(forget_ids), len(retain_ids)
        summary["splits"][split] = {
            "ids_in_split": len(ids),
            "ids_without_captions": missing,
            "forget": forget_n,
            "retain": retain_n,
            "keywords": {
                c: {k: v.to_json() for k, v in kws.items()}
                for c, kws in result.keyword_counts.items()
            },
        }
        written.append(SplitFiles(split, forget_n, retain_n, tuple(missing)))
    write_json(out / "split_summary.json", summary)
    return written
