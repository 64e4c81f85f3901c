"""Code statistics from either source, for LCR and suppression alike.

``data``: the dataset's motions VQ-encoded with the official sample protocol (``code_stats``);
``generated``: the tokens the original model samples for the split's captions
(``generated_stats``), for users with a checkpoint and captions but no motions. Both are cached
under the model set (``MODEL/cache/``) by a key over everything they depend on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hmu_core.data.concept_data import ConceptData
from hmu_core.errors import ConfigError
from hmu_core.models.generate import load_generator
from hmu_core.models.model_set import LoadedModelSet
from hmu_core.progress import Progress, no_progress
from hmu_core.unlearn.code_stats import (
    CodeSamples,
    SampleProtocol,
    load_or_encode,
)
from hmu_core.unlearn.generated_stats import (
    GenerationProtocol,
    generated_cache_key,
    sample_code_samples,
)
from hmu_core.unlearn.lcr_model import code_samples

STATS_SOURCES = ("data", "generated")


def statistics(loaded: LoadedModelSet, data: ConceptData, source: str, *,
               protocol: SampleProtocol, generation: GenerationProtocol,
               text_encoder: Any = None, cache_dir: Path | None = None,
               progress: Progress = no_progress) -> CodeSamples:
    """The code samples of ``data``'s split from ``source``, cached in ``cache_dir`` (None:
    computed every time).

    Raises:
        ConfigError: an unknown source, or ``generated`` without a text encoder.
        DataError: ``data`` needs motions the dataset lacks (a captions-only dataset: use
            ``generated``).
    """
    if source not in STATS_SOURCES:
        raise ConfigError(f"unknown statistics source {source!r}; use one of "
                          f"{', '.join(STATS_SOURCES)}")
    if source == "data":
        return code_samples(loaded.parts["vq"], data, protocol, cache_dir, progress)
    if text_encoder is None:
        raise ConfigError("generated statistics need the model set's text encoder")

    def sample() -> CodeSamples:
        return sample_code_samples(load_generator(loaded, text_encoder=text_encoder),
                                   data.dataset, data.ids, generation, progress,
                                   forget_ids=data.forget_ids)

    if cache_dir is None:
        return sample()
    networks = [loaded.parts[p].checkpoint_file for p in ("trans", "res", "length_estimator")
                if p in loaded.parts]
    key = generated_cache_key(networks, loaded.models.text_encoder, data.dataset, data.ids,
                              generation)
    return load_or_encode(cache_dir, key, sample)
