"""Concept statistics of a dataset: the paper's Figure 2 (toxic share pie, per-keyword bars).

Counts are motion ids: an id counts for a keyword when at least ``min_occurrences`` of its
caption lines match that keyword, and for a concept when enough lines match any of its
keywords (:class:`hmu_core.data.concepts.ConceptSplit`). Every count is reported twice, over
all ids of the split and over the originals only (ids without the ``M`` mirror prefix), each
with the number of ids considered, so the shares can be recomputed from the JSON.

:func:`mode_differences` lists, per keyword, the ids only one matching mode catches, with
sample captions, so a user can choose the mode knowingly. Figures use matplotlib's Agg
backend (headless). Torch-free.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hmu_core.atomic import atomic_open, write_json
from hmu_core.data.concepts import (
    Concept,
    ConceptSplit,
    MatchMode,
    SplitResult,
    caption_text,
    matched_keywords,
    word_pattern,
)
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.progress import Progress, no_progress, track

log = logging.getLogger(__name__)


def is_mirror(motion_id: str) -> bool:
    """True for HumanML3D's left/right mirrored copies (``M000123``)."""
    return motion_id.startswith("M")


def _subset_json(result: SplitResult, concepts: Sequence[Concept]) -> dict[str, Any]:
    return {
        "toxic_any": result.total.to_json(),
        "concepts": {
            c.name: {
                "ids": result.concept_counts[c.name].to_json(),
                "keywords": {k: v.to_json() for k, v in result.keyword_counts[c.name].items()},
            }
            for c in concepts
        },
    }


def concept_stats(
    captions: Mapping[str, Sequence[str]],
    concepts: Sequence[Concept],
    mode: MatchMode | str,
    min_occurrences: int | None = None,
) -> tuple[dict[str, Any], SplitResult]:
    """Counts over all ids and over originals only.

    Args:
        captions: motion id -> raw caption lines (``texts/<id>.txt``).

    Returns:
        (``{"all": ..., "originals": ...}`` JSON-ready counts, the split over all ids).
    """
    splitter = ConceptSplit(concepts, mode, min_occurrences)
    result = splitter.split(captions)
    originals = {k: v for k, v in captions.items() if not is_mirror(k)}
    orig_result = splitter.split(originals)
    return {
        "all": _subset_json(result, splitter.concepts),
        "originals": _subset_json(orig_result, splitter.concepts),
        "concept_definitions": {
            c.name: {"keywords": list(c.keywords), "min_occurrences": c.min_occurrences}
            for c in splitter.concepts
        },
    }, result


def _trigger(line: str, keyword: str, mode: MatchMode, concept: Concept) -> str:
    """The word that made ``keyword`` match in ``line`` (for the samples)."""
    if mode is MatchMode.WORD:
        others = frozenset(k.lower() for k in concept.keywords if k != keyword)
        found = word_pattern(keyword, others).search(caption_text(line))
        return found.group(0) if found else keyword
    text, _, rest = line.partition("#")
    for word in text.split():
        if keyword in word:
            return word.strip(".,;:!?")
    for word in re.split(r"[\s#]+", rest):
        if keyword in word:
            return f"{word} (token field)"
    return keyword


def _plain_word(keyword: str) -> re.Pattern[str]:
    """Whole word, case-insensitive, no inflections: the naive matcher the word mode improves."""
    body = r"[\s-]+".join(re.escape(w) for w in keyword.split())
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", re.IGNORECASE)


def mode_differences(
    captions: Mapping[str, Sequence[str]],
    concept: Concept,
    n_samples: int = 3,
    min_occurrences: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Per keyword: ids both modes match, ids only ``official`` matches, only ``word`` matches.

    Also ``plain_word``: ids a naive matcher (whole word, case-insensitive, no inflections)
    finds, which shows what the inflections add ("kicks" is no plain match of "kick").
    Samples (the first ``n_samples`` ids in input order, so deterministic) carry the id, the
    caption sentence and the word that triggered the match (e.g. "white" for ``hit`` in
    official mode).
    """
    need = concept.min_occurrences if min_occurrences is None else min_occurrences
    plain = {k: _plain_word(k) for k in concept.keywords}
    table: dict[str, dict[str, Any]] = {
        k: {"both": 0, "official_only": 0, "word_only": 0, "plain_word": 0,
            "samples": {"official_only": [], "word_only": []}}
        for k in concept.keywords
    }
    for motion_id, lines in captions.items():
        off = [matched_keywords(ln, concept, MatchMode.OFFICIAL) for ln in lines]
        wrd = [matched_keywords(ln, concept, MatchMode.WORD) for ln in lines]
        for keyword, row in table.items():
            off_lines = [ln for ln, hit in zip(lines, off, strict=True) if keyword in hit]
            word_lines = [ln for ln, hit in zip(lines, wrd, strict=True) if keyword in hit]
            in_off, in_word = len(off_lines) >= need, len(word_lines) >= need
            if sum(1 for ln in lines if plain[keyword].search(caption_text(ln))) >= need:
                row["plain_word"] += 1
            if in_off == in_word:
                row["both"] += int(in_off)
                continue
            side = "official_only" if in_off else "word_only"
            row[side] += 1
            mine, theirs = (off_lines, word_lines) if in_off else (word_lines, off_lines)
            if len(row["samples"][side]) < n_samples:
                line = next((ln for ln in mine if ln not in theirs), mine[0])
                mode = MatchMode.OFFICIAL if in_off else MatchMode.WORD
                row["samples"][side].append({
                    "id": motion_id,
                    "caption": caption_text(line),
                    "trigger": _trigger(line, keyword, mode, concept),
                })
    for row in table.values():
        row["official"] = row["both"] + row["official_only"]
        row["word"] = row["both"] + row["word_only"]
        row["considered"] = len(captions)
    return table


# --------------------------------------------------------------------------- figures


def _figure_paths(out_dir: Path, concept: str) -> tuple[Path, Path]:
    return out_dir / f"{concept}_pie.png", out_dir / f"{concept}_keywords.png"


def draw_figure2(
    stats: Mapping[str, Any], concept: str, out_dir: Path, title: str, subset: str = "all"
) -> tuple[Path, Path]:
    """Write the two panels of the paper's Figure 2 for one concept as PNGs.

    The pie shows the share of toxic ids of the concept; the bars show, per keyword, the share
    of ids it matches (bars may add up to more than the pie: one id can match several
    keywords). Returns (pie path, bar path).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    block = stats[subset]["concepts"][concept]
    ids = block["ids"]
    pie_path, bar_path = _figure_paths(out_dir, concept)

    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=120)
    toxic, total = ids["matching"], ids["considered"]
    ax.pie(
        [toxic, max(total - toxic, 0)],
        labels=[f"{concept}\n{toxic:,} ids", f"other\n{total - toxic:,} ids"],
        colors=["#c0392b", "#95a5a6"],
        autopct="%1.2f%%",
        startangle=90,
        counterclock=False,
    )
    ax.set_title(f"{title}\n{concept}: {100 * ids['share']:.2f}% of {total:,} ids", fontsize=9)
    _save(fig, pie_path, plt)

    keywords = block["keywords"]
    names = list(keywords)
    shares = [100 * keywords[k]["share"] for k in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(names) + 1.5), 3.6), dpi=120)
    bars = ax.bar(names, shares, color="#c0392b")
    for bar, name in zip(bars, names, strict=True):
        ax.annotate(
            f"{keywords[name]['matching']:,}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center", va="bottom", fontsize=7,
        )
    ax.set_ylabel("% of ids")
    ax.set_title(f"{title}: ids per keyword (of {total:,})", fontsize=9)
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    fig.tight_layout()
    _save(fig, bar_path, plt)
    return pie_path, bar_path


def _save(fig: Any, path: Path, plt: Any) -> None:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


def write_stats(
    out_dir: str | Path,
    stats: Mapping[str, Any],
    figures: bool = True,
    title: str = "",
) -> list[Path]:
    """Write ``stats.json`` and, per concept, the Figure 2 PNGs into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "stats.json"]
    write_json(written[0], dict(stats))
    if figures:
        for concept in stats["all"]["concepts"]:
            written.extend(draw_figure2(stats, concept, out, title or f"{stats['mode']} mode"))
    return written


def dataset_stats(
    dataset: HumanML3D,
    split: str,
    concepts: Sequence[Concept],
    mode: MatchMode | str,
    min_occurrences: int | None = None,
    compare_modes: bool = False,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Figure 2 counts of one split of a HumanML3D-layout dataset (captions-only is fine).

    Ids of the split without a caption file are left out of the counts and listed under
    ``ids_without_captions``. ``progress`` follows the caption reading.
    """
    ids = dataset.ids(split)
    captions, missing = dataset.caption_table(
        track(ids, progress, f"reading {split} captions"), missing_ok=True
    )
    if missing:
        log.warning("%d ids of %s.txt have no caption file and are not counted", len(missing),
                    split)
    counts, _ = concept_stats(captions, concepts, mode, min_occurrences)
    stats: dict[str, Any] = {
        "dataset": str(dataset.root),
        "split": split,
        "mode": MatchMode(mode).value,
        "has_motions": dataset.has_motions,
        "ids_in_split": len(ids),
        "ids_without_captions": missing,
        **counts,
    }
    if compare_modes:
        stats["mode_differences"] = {
            c.name: mode_differences(captions, c, min_occurrences=min_occurrences)
            for c in concepts
        }
    return stats
