"""The official T2M evaluation protocol over one test subset (humanml3d.md §9.6, momask.md §4.3).

Per repeat: every item of the subset (a clip's whole-clip captions, or one timed caption) draws
a caption and the official crop (``TextMotionDataset``: ``(len//4)·4``, one unit shorter with
probability 1/3, random offset), normalised with the *evaluator's* statistics; the items are
shuffled into batches of 32 (``drop_last``); the model generates one motion per item from the
batch's caption with the ground-truth token length (MoMask/BAMM/HMU, not a length estimator);
the evaluator embeds GT motions, generated motions, captions and detoxified captions (toxic
words masked as HMU's MM-Safe). Metrics per repeat: FID, Diversity, R@1/2/3, MM-Dist, MM-Notox,
the same retrieval numbers for the GT motions (the reference row), and MultiModality from the
first ``mm_captions`` items generated ``mm_generations`` times (official: 3 batches × 32 × 30;
the last generation is also the item's motion for the other metrics, as official). Reported as
mean ± 1.96·std/√R.

Randomness: the crops come from (seed, repeat, item), the batch order from (seed, repeat), each
generation's seed from (seed, repeat, batch, generation), the Diversity/MM draws from (seed,
repeat); one seed gives the same numbers twice. Deviation: the official code samples the MM
generations with Gumbel noise and the others categorically; here all use ``params.sampling``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from hmu_core.data.datasets import TextMotionDataset, caption_tokens
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError, DataError
from hmu_core.eval import metrics
from hmu_core.eval.evaluator import Evaluator
from hmu_core.eval.word_vectors import WordVectorizer, encode_batch, mask_toxic_tokens
from hmu_core.progress import Progress, no_progress
from hmu_core.sampling.backend import Backend
from hmu_core.sampling.lengths import MAX_FRAMES
from hmu_core.sampling.loop import generate
from hmu_core.sampling.params import SamplingParams

log = logging.getLogger(__name__)

# Table order: generated-motion metrics, then the ground-truth reference row.
METRICS = ("fid", "diversity", "top1", "top2", "top3", "matching_score", "mm_notox",
           "multimodality", "gt_diversity", "gt_top1", "gt_top2", "gt_top3",
           "gt_matching_score")


@dataclass(frozen=True)
class ProtocolParams:
    """Protocol knobs; defaults are the official ones (MoMask ``eval_t2m_trans_res.py``).

    Attributes:
        mm_captions, mm_generations, mm_times: MultiModality over the first ``mm_captions``
            items of each repeat, each generated ``mm_generations`` times, ``mm_times`` pairs
            drawn; ``mm_captions=0`` skips it (CPU budgets).
        diversity_times: pairs for Diversity; None = official (300 if N > 300 else 100),
            capped at N − 1 for small subsets (recorded in the result).
        mm_notox_accounting: ``mean`` (default) or HMU's ``official`` batch accounting.
        match_mode: how toxic words are found for MM-Notox (``official`` substring / ``word``).
    """

    repeats: int = 20
    batch_size: int = metrics.R_PRECISION_POOL
    mm_captions: int = 96
    mm_generations: int = 30
    mm_times: int = 10
    diversity_times: int | None = None
    seed: int = 0
    mm_notox_accounting: Literal["mean", "official"] = "mean"
    match_mode: str = "official"
    sampling: SamplingParams = field(default_factory=SamplingParams)

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.batch_size < 3:
            raise ConfigError(f"repeats must be >= 1 and batch_size >= 3 (R@3 needs 3 per "
                              f"pool); got {self.repeats} and {self.batch_size}")
        if self.mm_captions < 0 or (self.mm_captions and not
                                    0 < self.mm_times < self.mm_generations):
            raise ConfigError(f"MultiModality needs 0 < mm_times < mm_generations; got "
                              f"{self.mm_times} of {self.mm_generations} (or mm_captions 0)")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return {"repeats": self.repeats, "batch_size": self.batch_size,
                "mm_captions": self.mm_captions, "mm_generations": self.mm_generations,
                "mm_times": self.mm_times, "diversity_times": self.diversity_times,
                "seed": self.seed, "mm_notox_accounting": self.mm_notox_accounting,
                "match_mode": self.match_mode, "sampling": self.sampling.to_dict()}


@dataclass
class GeneratedSample:
    """One generated motion of the first repeat (for the toxicity measures)."""

    name: str  # entry name: clip id, or ``<id>#<line>`` for a timed caption
    motion_id: str
    begin: int  # the caption's span of the clip, feature frames [begin, end)
    end: int
    text: str
    features: np.ndarray  # (T, 263) de-normalised
    embedding: np.ndarray  # (D,) evaluator motion embedding


@dataclass
class ProtocolResult:
    """Per-repeat values, their mean ± 95 % CI, and the first repeat's generated motions."""

    per_repeat: dict[str, list[float]]
    items: int
    samples_per_repeat: int
    diversity_times: int
    params: ProtocolParams
    samples: list[GeneratedSample] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, dict[str, float]]:
        """``metric -> {"mean", "ci95"}`` (NaN where a repeat had no value)."""
        out = {}
        for name, values in self.per_repeat.items():
            mean, ci = metrics.mean_ci95(np.asarray(values, np.float64))
            out[name] = {"mean": float(mean), "ci95": float(ci)}
        return out

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary(), "per_repeat": self.per_repeat, "items": self.items,
                "samples_per_repeat": self.samples_per_repeat,
                "diversity_times": self.diversity_times, "params": self.params.to_dict()}


def eval_dataset(dataset: HumanML3D, ids: Sequence[str], evaluator: Evaluator,
                 seed: int) -> TextMotionDataset:
    """The official eval items of ``ids`` normalised with the evaluator's statistics."""
    if evaluator.mean is None or evaluator.std is None:
        raise ConfigError("the evaluator has no normalisation statistics; load it with "
                          "load_evaluator()")
    return TextMotionDataset(dataset, list(ids), evaluator.mean, evaluator.std,
                             unit_length=evaluator.config.unit_length,
                             max_motion_length=MAX_FRAMES, seed=seed)


def _pad(evaluator: Evaluator, features: list[np.ndarray]) -> np.ndarray:
    """De-normalised generated features -> evaluator-normalised, zero-padded (B, 196, D)."""
    out = np.zeros((len(features), MAX_FRAMES, evaluator.config.dim_pose), np.float32)
    for row, feats in enumerate(features):
        out[row, : len(feats)] = evaluator.normalize(feats)[:MAX_FRAMES]
    return out


def embed_generated(evaluator: Evaluator, features: Sequence[np.ndarray]) -> np.ndarray:
    """Evaluator embeddings (N, D) of generated motions (de-normalised features), each read
    over its own length (at most ``MAX_FRAMES``)."""
    lengths = np.array([min(len(f), MAX_FRAMES) for f in features])
    return evaluator.motion_embeddings(_pad(evaluator, list(features)), lengths)


def _generate(generator: Backend, evaluator: Evaluator, texts: list[str],
              m_lens: np.ndarray, seeds: np.ndarray, sampling: SamplingParams
              ) -> tuple[list[np.ndarray], np.ndarray]:
    unit = evaluator.config.unit_length
    motions = generate(generator, texts, seeds=[int(s) for s in seeds], params=sampling,
                       tokens=[int(n) // unit for n in m_lens]).motions
    feats = [m.features for m in motions]
    return feats, evaluator.motion_embeddings(_pad(evaluator, feats), m_lens)


def _seeds(params: ProtocolParams, repeat: int, batch: int, generation: int,
           count: int) -> np.ndarray:
    rng = np.random.default_rng([params.seed, repeat, batch, generation])
    return rng.integers(0, 2**31 - 1, size=count)


def _safe_fid(gt: np.ndarray, gen: np.ndarray, repeat: int) -> float:
    try:
        return metrics.fid(gt, gen)
    except DataError as error:
        log.warning("repeat %d: FID undefined (%s); recorded as NaN", repeat, error)
        return float("nan")


def run_protocol(generator: Backend, evaluator: Evaluator, vectorizer: WordVectorizer,
                 dataset: HumanML3D, ids: Sequence[str], keywords: Sequence[str],
                 params: ProtocolParams = ProtocolParams(),
                 progress: Progress = no_progress) -> ProtocolResult:
    """Run the protocol on the clips ``ids`` of ``dataset`` (e.g. a concept's test forget set).

    Args:
        generator: any backend of the request loop: a model set (``load_generator``) or an
            exported bundle (``exporter.runtime.Generator``, e.g. to check an int8 export).
        evaluator: the T2M evaluator (``load_evaluator``) and ``vectorizer`` its word vectors.
        keywords: the concepts' keywords, masked for MM-Notox.
        progress: called with ``(batches done, batches in all repeats)``.

    Raises:
        DataError: fewer items than one batch. ConfigError: bad parameters.
    """
    data = eval_dataset(dataset, ids, evaluator, params.seed)
    n_batches = len(data) // params.batch_size
    if n_batches < 1:
        raise DataError(f"the subset has {len(data)} evaluation items ({len(ids)} clips), fewer "
                        f"than one batch of {params.batch_size}; lower the batch size or use "
                        f"a larger split")
    n = n_batches * params.batch_size
    div_times = params.diversity_times or (300 if n > 300 else 100)
    div_times = min(div_times, n - 1)
    mm_items = min(params.mm_captions, n)
    per_repeat: dict[str, list[float]] = {k: [] for k in METRICS}
    samples: list[GeneratedSample] = []
    max_text_len = evaluator.config.max_text_len
    total, done = params.repeats * n_batches, 0
    for repeat in range(params.repeats):
        data.set_epoch(repeat)
        order = np.random.default_rng([params.seed, repeat]).permutation(len(data))[:n]
        gt, gen, text, clean, changed, mm = [], [], [], [], [], []
        for b, idx in enumerate(order.reshape(n_batches, params.batch_size).tolist()):
            items = [data[i] for i in idx]
            texts = [item[0] for item in items]
            tokens = [caption_tokens(data, i, t) for i, t in zip(idx, texts, strict=True)]
            motions = np.stack([item[1].numpy() for item in items])
            m_lens = np.array([item[2] for item in items], np.int64)
            gt.append(evaluator.motion_embeddings(motions, m_lens))
            text.append(evaluator.text_embeddings(*encode_batch(tokens, vectorizer,
                                                                max_text_len)))
            masked = [mask_toxic_tokens(t, keywords, params.match_mode) for t in tokens]
            clean.append(evaluator.text_embeddings(*encode_batch([m[0] for m in masked],
                                                                 vectorizer, max_text_len)))
            changed.extend(m[1] for m in masked)
            in_mm = max(0, min(mm_items - b * params.batch_size, params.batch_size))
            runs = params.mm_generations if in_mm else 1
            mm_embs = []
            for g in range(runs):
                feats, emb = _generate(generator, evaluator, texts, m_lens,
                                       _seeds(params, repeat, b, g, len(texts)), params.sampling)
                mm_embs.append(emb[:in_mm])
            if in_mm:
                mm.append(np.stack(mm_embs, axis=1))  # (in_mm, generations, D)
            gen.append(emb)  # the last generation, as official
            if repeat == 0:
                entries = [data.entries[i] for i in idx]
                samples += [GeneratedSample(x.name, x.motion_id, x.begin, x.end, t, f, e)
                            for x, t, f, e in zip(entries, texts, feats, emb, strict=True)]
            done += 1
            progress("evaluating", done, total)
        gt_e, gen_e, text_e = np.concatenate(gt), np.concatenate(gen), np.concatenate(text)
        rng = np.random.default_rng([params.seed, repeat, 1 << 20])
        top = metrics.r_precision(text_e, gen_e, 3, params.batch_size)
        gt_top = metrics.r_precision(text_e, gt_e, 3, params.batch_size)
        values = {
            "fid": _safe_fid(gt_e, gen_e, repeat),
            "diversity": metrics.diversity(gen_e, rng, div_times),
            "top1": top[0], "top2": top[1], "top3": top[2],
            "matching_score": metrics.matching_score(text_e, gen_e, params.batch_size),
            "mm_notox": metrics.mm_notox(np.concatenate(clean), gen_e, np.array(changed),
                                   accounting=params.mm_notox_accounting,
                                   pool_size=params.batch_size),
            "multimodality": metrics.multimodality(np.concatenate(mm), rng, params.mm_times)
            if mm else float("nan"),
            "gt_diversity": metrics.diversity(gt_e, rng, div_times),
            "gt_top1": gt_top[0], "gt_top2": gt_top[1], "gt_top3": gt_top[2],
            "gt_matching_score": metrics.matching_score(text_e, gt_e, params.batch_size),
        }
        for key in METRICS:
            per_repeat[key].append(float(values[key]))
        log.info("repeat %d: %s", repeat, {k: round(v, 4) for k, v in values.items()})
    return ProtocolResult(per_repeat=per_repeat, items=len(data), samples_per_repeat=n,
                          diversity_times=div_times, params=params, samples=samples)
