"""The safety protocol: is a model's violence gone, over every caption line and many seeds?

One generation per caption line says little: the same LCR model scores 16.7 % with seed 0 and
25.0 % with seed 1 on the 36 forget test clips. Here every figure is measured with ``seeds``
independent seeds and reported as mean ± 95 % CI over them (1.96 σ/√n, the convention of the
metrics tables, ``metrics.mean_ci95``), so a table says which
differences are real:

- forget toxicity: every caption line of the test split's forget clips, with the ground-truth
  length of its span, judged by the synthetic set's family classifier (toxic family or not);
- implicit attack: the dataset's implicit (keyword-free) prompts, 4 s each;
- retain accuracy: the first caption line of every retain test clip, judged as the family its
  span shows;
- naturalness (``naturalness``) of the forget outputs, with the retain outputs' as the
  reference a safe replacement should look like.

Request k of seed s uses the stream ``s * 1_000_003 + k``, so seeds never share draws.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hmu_core.data.concept_data import load_concept_data
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError
from hmu_core.eval.metrics import mean_ci95
from hmu_core.eval.naturalness import mean_naturalness
from hmu_core.eval.toxicity import FamilyJudge, first_per_family, load_implicit_prompts
from hmu_core.models.generate import MotionGenerator, generate_motions
from hmu_core.sampling.lengths import tokens_for_frames

SEED_STRIDE = 1_000_003
IMPLICIT_SECONDS = 4.0
"""How long an implicit (keyword-free) prompt's motion is, here and in the benchmark's implicit
attack when the model has no length estimator."""


@dataclass(frozen=True)
class CaptionLine:
    """One caption of a test clip and the feature frames ``[begin, end)`` it describes."""

    clip: str
    text: str
    begin: int
    end: int

    @property
    def tokens(self) -> int:
        """The span's length in tokens, clipped to the models' range (``tokens_for_frames``)."""
        return tokens_for_frames(self.end - self.begin)

    @property
    def span(self) -> tuple[str, int, int]:
        """``(clip, begin, end)``: what ``FamilyJudge.family`` reads the true family from."""
        return self.clip, self.begin, self.end


def caption_lines(dataset: HumanML3D, ids: Sequence[str], *, first_only: bool = False,
                  whole_clip_only: bool = False) -> list[CaptionLine]:
    """Every caption line of ``ids`` (or each clip's first line) with its span;
    ``whole_clip_only`` leaves out the lines that describe a segment."""
    rows = []
    for clip in ids:
        frames = len(dataset.features(clip))
        captions = [c for c in dataset.captions(clip) if c.whole_clip or not whole_clip_only]
        for caption in captions[:1] if first_only else captions:
            begin, end = caption.frame_span(frames)
            rows.append(CaptionLine(clip, caption.text, begin, end))
    return rows


@dataclass(frozen=True)
class SafetyPrompts:
    """What every model is asked, once per seed."""

    forget: list[CaptionLine]
    retain: list[CaptionLine]
    implicit: list[str]

    @classmethod
    def from_dataset(cls, data_dir: str | Path, concepts: Sequence[str], split: str = "test",
                     retain_limit: int | None = None,
                     implicit_per_family: int | None = None) -> SafetyPrompts:
        """Every forget caption line of ``split``, the first line of its retain clips (the
        first ``retain_limit`` clips when given) and the implicit prompts (the first
        ``implicit_per_family`` of each family when given)."""
        test = load_concept_data(data_dir, concepts, split=split)
        implicit = [prompt for _, prompt in first_per_family(
            load_implicit_prompts(Path(data_dir)), implicit_per_family)]
        return cls(forget=caption_lines(test.dataset, test.forget_ids),
                   retain=caption_lines(test.dataset, test.retain_ids[:retain_limit],
                                        first_only=True),
                   implicit=implicit)


@dataclass(frozen=True)
class SafetyProtocol:
    """Seeds (at least 2 for a CI; the benchmark uses 6)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    batch_size: int = 128

    def __post_init__(self) -> None:
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"the safety protocol needs 2 or more distinct seeds, got "
                              f"{list(self.seeds)}")


Generate = Callable[..., Any]
"""``generate(prompts, *, seeds=..., tokens=... | seconds=...) -> Generation``: the torch
pipeline (:func:`torch_generate`) or the runtime's ``Generator.generate``; both give the same
motions for the same seeds."""


def torch_generate(gen: MotionGenerator) -> Generate:
    """The torch pipeline as a :data:`Generate`."""
    return functools.partial(generate_motions, gen)


def generate_batched(generate: Generate, texts: Sequence[str], seed: int, batch_size: int, *,
                     tokens: Sequence[int] | None = None) -> list[Any]:
    """One motion per text, in batches: request k of ``seed`` uses the stream
    ``seed * SEED_STRIDE + k``, ``tokens[k]`` tokens long (``IMPLICIT_SECONDS`` without)."""
    motions = []
    for first in range(0, len(texts), batch_size):
        chunk = list(texts[first:first + batch_size])
        seeds = [seed * SEED_STRIDE + first + k for k in range(len(chunk))]
        kwargs: dict[str, Any] = ({"tokens": list(tokens[first:first + batch_size])}
                                  if tokens is not None else {"seconds": IMPLICIT_SECONDS})
        motions += generate(chunk, seeds=seeds, **kwargs).motions
    return motions


def generate_lines(generate: Generate, lines: Sequence[CaptionLine], seed: int,
                   batch_size: int) -> list[Any]:
    """One motion per caption line, as long as the span it describes (the one length rule of
    every held-out caption measure: this protocol, ``scripts/eval_family_match.py``)."""
    return generate_batched(generate, [r.text for r in lines], seed, batch_size,
                            tokens=[r.tokens for r in lines])


@dataclass
class SafetyResult:
    """Per-seed values of every measure and their summary."""

    per_seed: dict[str, list[float]] = field(default_factory=dict)

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.per_seed.setdefault(key, []).append(float(value))

    def summary(self) -> dict[str, dict[str, float]]:
        """measure -> ``{"mean", "ci95", "min", "max"}`` over seeds."""
        out = {}
        for key, values in self.per_seed.items():
            mean, ci = mean_ci95(np.asarray(values))
            out[key] = {"mean": float(mean), "ci95": float(ci), "min": float(min(values)),
                        "max": float(max(values))}
        return out


def measure_safety(generate: Generate, judge: FamilyJudge, prompts: SafetyPrompts,
                   protocol: SafetyProtocol,
                   step: Callable[[str], None] | None = None) -> SafetyResult:
    """Run the protocol for one model (see the module docstring); ``step`` reports each seed."""
    result = SafetyResult()
    for seed in protocol.seeds:
        forget = generate_lines(generate, prompts.forget, seed, protocol.batch_size)
        retain = generate_lines(generate, prompts.retain, seed, protocol.batch_size)
        implicit = generate_batched(generate, prompts.implicit, seed, protocol.batch_size)
        values = {
            "forget_toxicity": judge.rate([m.features for m in forget]),
            "implicit_toxicity": judge.rate([m.features for m in implicit]),
            "retain_accuracy": judge.accuracy([m.features for m in retain],
                                              [r.span for r in prompts.retain]),
            **{f"forget_{k}": v for k, v in mean_naturalness([m.joints for m in forget]).items()},
            **{f"retain_{k}": v for k, v in mean_naturalness([m.joints for m in retain]).items()},
        }
        result.add(values)
        if step is not None:
            step(f"seed {seed}: forget {values['forget_toxicity']:.3f}, implicit "
                 f"{values['implicit_toxicity']:.3f}, retain {values['retain_accuracy']:.3f}")
    return result

