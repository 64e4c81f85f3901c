"""Code statistics without motion data: the tokens the original model itself samples.

``--stats data`` VQ-encodes the dataset's motions (``code_stats``); a user who holds only an
official checkpoint and the captions (e.g. the real HumanML3D texts from ``hmu data
import-captions``) has no motions to encode. Here every caption line of the split's clips is
generated ``repeats`` times by the original model (lengths from its length estimator, or BAMM's
END token; official sampling knobs), and the sampled codes of every RVQ layer become the
samples: a sample "contains" code k if the model emitted it anywhere in that generation. The
forget/retain ranking then runs exactly as on encoded motions. Nothing is decoded, so this is
the transformer passes only.

``max_lines`` caps each side on its own (forget lines, retain lines: a seeded subset of each,
default 2,000): a code's presence rate is then known to about 1 point on either side, and the
scarce forget lines are never thinned out to make room for retain ones (HumanML3D has about
80,000 lines in train_val, a few thousand of them violent). On the synthetic ``small`` set, all
622 forget lines and 2,000 of its 7,214 retain lines gave the same safety figures over 6 seeds
as every line (16.7 ± 1.0 % forget toxicity against 16.5 ± 0.9 %) in a third of the time.

Sample ``k`` (repeat-major: ``k = repeat * lines + line``) uses the seed ``protocol.seed + k``;
the result is cached under the model set like the encoded statistics, keyed by the
transformer, residual and length-estimator checkpoints, the text-encoder spec, the captions of
the ids and the protocol.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError, DataError
from hmu_core.models.generate import MotionGenerator
from hmu_core.progress import Progress, no_progress, track
from hmu_core.sampling.lengths import MAX_TOKENS
from hmu_core.sampling.loop import generate_tokens
from hmu_core.sampling.params import SamplingParams
from hmu_core.sampling.streams import RequestStreams
from hmu_core.unlearn.code_stats import CodeSamples, file_digest

CACHE_VERSION = 2  # 2: max_lines caps the forget and the retain lines each


@dataclass(frozen=True)
class GenerationProtocol:
    """How captions become token samples: ``repeats`` seeded generations per caption line, of
    at most ``max_lines`` forget lines and as many retain lines (None: every line)."""

    repeats: int = 1
    seed: int = 0
    batch_size: int = 256
    max_lines: int | None = 2000  # per side
    params: SamplingParams = field(default_factory=SamplingParams)

    def __post_init__(self) -> None:
        for name in ("repeats", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"generation protocol: {name} must be >= 1")
        if self.max_lines is not None and self.max_lines < 1:
            raise ConfigError(f"generation protocol: max_lines must be >= 1, got "
                              f"{self.max_lines}")
        if self.seed < 0:
            raise ConfigError(f"generation protocol: seed must be >= 0, got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "params": self.params.to_dict()}


def caption_samples(dataset: HumanML3D, ids: Sequence[str]) -> tuple[list[str], np.ndarray,
                                                                     tuple[str, ...]]:
    """Every caption line of ``ids``: ``(texts, clip index per text, clip ids)``.

    Raises:
        DataError: no clip of ``ids`` has a caption.
    """
    texts: list[str] = []
    owner: list[int] = []
    for index, motion_id in enumerate(ids):
        for caption in dataset.captions(motion_id):
            if caption.text.strip():
                texts.append(caption.text)
                owner.append(index)
    if not texts:
        raise DataError(f"{dataset.root}: none of {len(ids)} clips has a caption to generate "
                        f"from")
    return texts, np.asarray(owner, dtype=np.int32), tuple(ids)


def sample_code_samples(gen: MotionGenerator, dataset: HumanML3D, ids: Sequence[str],
                        protocol: GenerationProtocol, progress: Progress = no_progress, *,
                        forget_ids: Collection[str] = ()) -> CodeSamples:
    """Generate the caption lines of ``ids`` ``repeats`` times and keep the codes: at most
    ``protocol.max_lines`` lines of the ``forget_ids`` clips and as many of the others (seeded
    subsets, file order kept).

    Returns ``CodeSamples`` with ``codes`` ``(samples, 49, layers)``, -1 past each generation's
    length, in the same form as the encoded statistics.
    """
    texts, owner, motion_ids = caption_samples(dataset, ids)
    forget = set(forget_ids)
    is_forget = np.array([motion_ids[i] in forget for i in owner], dtype=bool)
    if protocol.max_lines is not None:
        rng = np.random.default_rng(protocol.seed)
        keep = np.zeros(len(texts), dtype=bool)
        for side in (is_forget, ~is_forget):
            lines = np.flatnonzero(side)
            keep[rng.permutation(lines)[:protocol.max_lines]] = True
        texts, owner = [t for t, k in zip(texts, keep, strict=True) if k], owner[keep]
    requests = [(k, texts[k % len(texts)]) for k in range(protocol.repeats * len(texts))]
    layers = 1 + (0 if gen.pipeline.res is None else gen.pipeline.res.num_quantizers - 1)
    codes = np.full((len(requests), MAX_TOKENS, layers), -1, dtype=np.int16)
    size = protocol.batch_size
    batches = range(0, len(requests), size)
    for first in track(batches, progress, "sampling tokens"):
        batch = requests[first:first + size]
        streams = RequestStreams([protocol.seed + k for k, _ in batch])
        ids_, lens, _ = generate_tokens(gen, [t for _, t in batch], streams, protocol.params)
        width = min(ids_.shape[1], MAX_TOKENS)
        block = ids_[:, :width].astype(np.int16)
        block[np.arange(width)[None, :] >= lens[:, None]] = -1
        codes[first:first + len(batch), :width] = block
    return CodeSamples(codes=codes, sample_motion=np.tile(owner, protocol.repeats),
                       motion_ids=motion_ids, nb_code=int(gen.pipeline.trans.config.num_tokens))


def generated_cache_key(checkpoints: Sequence[Path], text_encoder: str, dataset: HumanML3D,
                        ids: Sequence[str], protocol: GenerationProtocol) -> str:
    """sha256 over what the sampled tokens depend on: the networks that sample them, the
    text-encoder spec, the captions of ``ids`` and the protocol."""
    digest = hashlib.sha256(f"hmu-generated-codes/{CACHE_VERSION}".encode())
    digest.update(json.dumps({"protocol": protocol.to_dict(), "text_encoder": text_encoder},
                             sort_keys=True).encode())
    for path in checkpoints:
        file_digest(path, digest)
    for motion_id in ids:
        digest.update(motion_id.encode() + b"\0")
        for caption in dataset.captions(motion_id):
            digest.update(caption.text.encode() + b"\0")
    return digest.hexdigest()
