"""Plan a synthetic dataset: which clips, of which families, how long, in which split.

Planning is separate from animation so that the plan (cheap, sequential, one Generator) fixes
every clip's content and its own seed; clips can then be generated in any order or in parallel
and still come out identical (:mod:`hmu_core.synth.generate`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from hmu_core.errors import ConfigError
from hmu_core.motion.skeleton import FPS
from hmu_core.synth.families import (
    COMPOSITE_PATTERNS,
    FAMILY_BY_NAME,
    SAFE_FAMILIES,
    TOXIC_FAMILIES,
    ClipPlan,
    Segment,
)

SIZES = {"tiny": 200, "small": 3000, "full": 20000}
"""Number of clips per size name."""

MIN_SECONDS, MAX_SECONDS = 2.0, 10.0
"""Clip duration range, as HumanML3D's (2-10 s)."""

BONE_SCALE = (0.95, 1.05)


@dataclass(frozen=True)
class DatasetPlan:
    """Planned clips (in id order) and the split each id belongs to."""

    clips: tuple[ClipPlan, ...]
    splits: dict[str, tuple[str, ...]]


def _check(size: str | int, toxic_share: float, composite_share: float) -> int:
    if isinstance(size, int) and not isinstance(size, bool):
        if size < 1:
            raise ConfigError(f"dataset size {size} must be a positive clip count")
        n = size
    elif size in SIZES:
        n = SIZES[size]
    else:
        raise ConfigError(f"unknown dataset size {size!r}; use one of {sorted(SIZES)} or a "
                          "clip count")
    if not 0.0 <= toxic_share <= 1.0:
        raise ConfigError(f"toxic share {toxic_share} is outside [0, 1]; e.g. 0.08 as HumanML3D")
    if not 0.0 <= composite_share <= 1.0:
        raise ConfigError(f"composite share {composite_share} is outside [0, 1]")
    if toxic_share > 0 and round(n * toxic_share) < len(TOXIC_FAMILIES):
        raise ConfigError(f"toxic share {toxic_share} gives fewer than {len(TOXIC_FAMILIES)} "
                          f"toxic clips in a '{size}' set ({n} clips); raise it so that every "
                          "toxic family is present")
    return n


def _frames(family: str, rng: np.random.Generator, cap: float = MAX_SECONDS) -> int:
    lo, hi = FAMILY_BY_NAME[family].seconds
    return round(float(rng.uniform(lo, max(lo, min(hi, cap)))) * FPS)


def _segments(families: tuple[str, ...], rng: np.random.Generator) -> tuple[Segment, ...]:
    """Contiguous segments of ``families`` with sampled parameters; total 2-10 s."""
    segments: list[Segment] = []
    start = 0
    for i, name in enumerate(families):
        rest = sum(FAMILY_BY_NAME[f].seconds[0] for f in families[i + 1:])
        n = _frames(name, rng, MAX_SECONDS - start / FPS - rest)
        params = FAMILY_BY_NAME[name].sample_params(rng)
        if len(families) > 1 and name == "walk" and families[1] == "wave":
            params["direction"] = ("turn_left", "turn_right")[int(rng.integers(2))]
        segments.append(Segment(name, start, start + n, params))
        start += n
    return tuple(segments)


def _labels(n: int, toxic_share: float, composite_share: float,
            rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Family tuples of ``n`` clips: toxic and safe families balanced, composites mixed in."""
    n_toxic = round(n * toxic_share)
    toxic_comp = [p for p in COMPOSITE_PATTERNS if FAMILY_BY_NAME[p[1]].toxic]
    safe_comp = [p for p in COMPOSITE_PATTERNS if not FAMILY_BY_NAME[p[1]].toxic]
    out: list[tuple[str, ...]] = []
    for count, singles, pairs in ((n_toxic, TOXIC_FAMILIES, toxic_comp),
                                  (n - n_toxic, SAFE_FAMILIES, safe_comp)):
        order = list(rng.permutation(len(singles)))
        for k in range(count):
            if rng.random() < composite_share and pairs and k >= len(singles):
                out.append(tuple(pairs[int(rng.integers(len(pairs)))]))
            else:  # cycle through the families in a shuffled order: balanced counts
                out.append((singles[order[k % len(singles)]],))
    rng.shuffle(out)
    return out


_TEST_SLOTS = (0, 7, 14)
_VAL_SLOTS = (3,)
"""Of every 20 consecutive ids (grouped by label): 3 go to test, 1 to val, 16 to train."""


def _splits(clips: list[ClipPlan], rng: np.random.Generator) -> dict[str, tuple[str, ...]]:
    """80/5/15 train/val/test split stratified by clip label; train_val and all derived.

    Ids are grouped by label (shuffled within each label) and dealt out systematically, 3 of
    every 20 to test and 1 to val, so each label gets its share to within one clip and small
    sets still have a non-empty val split.
    """
    by_label: dict[str, list[str]] = defaultdict(list)
    for clip in clips:
        by_label[clip.label].append(clip.clip_id)
    ordered = []
    for label in sorted(by_label):
        ordered += [by_label[label][i] for i in rng.permutation(len(by_label[label]))]
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for k, clip_id in enumerate(ordered):
        slot = k % 20
        part = "test" if slot in _TEST_SLOTS else "val" if slot in _VAL_SLOTS else "train"
        parts[part].append(clip_id)
    splits = {name: tuple(sorted(ids)) for name, ids in parts.items()}
    splits["train_val"] = tuple(sorted(parts["train"] + parts["val"]))
    splits["all"] = tuple(sorted(c.clip_id for c in clips))
    return splits


def clip_seed(seed: int, index: int) -> int:
    """The seed of clip ``index`` of a dataset planned with ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0])


def plan_dataset(size: str | int, seed: int, toxic_share: float = 0.08,
                 composite_share: float = 0.15) -> DatasetPlan:
    """Plan every clip of a synthetic dataset.

    Args:
        size: 'tiny' (200 clips), 'small' (3,000), 'full' (20,000), or a clip count (tests).
        seed: fixes the whole plan (families, parameters, durations, scales, splits, seeds).
        toxic_share: share of clips with a toxic segment (HumanML3D has about 8 %).
        composite_share: share of clips, beyond one of each family, made of two segments
            (e.g. walks then kicks), drawn from ``COMPOSITE_PATTERNS``.

    Returns:
        The clips with ids '000000'... in order, and the train/val/test/train_val/all splits.

    Raises:
        ConfigError: unknown size, shares outside [0, 1], or too few toxic clips to hold every
            toxic family.
    """
    n = _check(size, toxic_share, composite_share)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    labels = _labels(n, toxic_share, composite_share, rng)
    clips = []
    for index, families in enumerate(labels):
        clips.append(ClipPlan(clip_id=f"{index:06d}", segments=_segments(families, rng),
                              bone_scale=float(rng.uniform(*BONE_SCALE)),
                              seed=clip_seed(seed, index)))
    return DatasetPlan(tuple(clips), _splits(clips, rng))
