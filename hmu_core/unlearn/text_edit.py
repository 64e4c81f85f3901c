"""UCE and RECE on a loaded model set: encode the concept words, edit every ``cond_emb``.

The erase set is one text per keyword of the concepts (HMU erases ``kick, punch, hit, ...``
word by word, baselines.md §2.4), the guide is the empty text (HMU's ``--target_text ""``) or
the zero null condition, and the preserve set is HMU's 21 retain words unless the user gives
others. Both transformers' ``cond_emb`` layers are edited (base and residual: HMU edits both);
the VQ and everything else stay byte-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmu_core.data.concepts import Concept
from hmu_core.errors import ConfigError
from hmu_core.models.generate import encode_prompts
from hmu_core.models.model_set import LoadedModelSet
from hmu_core.unlearn.cond_emb import edit_cond_emb
from hmu_core.unlearn.rece import RECEConfig
from hmu_core.unlearn.uce import NULL_GUIDE, UCEConfig

EDITED_TENSOR = "cond_emb.weight"


@dataclass
class TextEditResult:
    """The parts edited and the record entries of a UCE/RECE run."""

    edited_parts: list[str]
    edits: list[dict[str, str]]
    results: dict[str, Any]


def erase_words(concepts: Sequence[Concept]) -> list[str]:
    """Every keyword of the concepts, once, in order."""
    return list(dict.fromkeys(k for c in concepts for k in c.keywords))


def run_text_edit(loaded: LoadedModelSet, text_encoder: Any, concepts: Sequence[Concept],
                  config: UCEConfig | RECEConfig, preserve: Sequence[str]) -> TextEditResult:
    """UCE (``UCEConfig``) or RECE (``RECEConfig``) on the set's transformers, in place.

    Raises:
        ConfigError: an empty erase set, or embeddings the layers cannot take.
    """
    uce = config.uce if isinstance(config, RECEConfig) else config
    words = erase_words(concepts)
    if not words:
        raise ConfigError("the concepts have no keywords to erase")
    erase = encode_prompts(text_encoder, words)
    guide = (np.zeros_like(erase) if uce.guide == NULL_GUIDE
             else np.repeat(encode_prompts(text_encoder, [uce.guide]), len(words), axis=0))
    kept = [w for w in preserve if w.strip()]
    preserve_rows = (encode_prompts(text_encoder, kept) if kept
                     else np.zeros((0, erase.shape[1]), np.float32))
    parts = [p for p in ("trans", "res") if p in loaded.parts]
    method = "rece" if isinstance(config, RECEConfig) else "uce"
    record = edit_cond_emb([loaded.model(p) for p in parts], erase, guide, preserve_rows,
                           method, config, names=parts)
    edits = [{"part": p, "tensor": EDITED_TENSOR,
              "sha256_before": record["modules"][p]["weight_sha256_before"],
              "sha256_after": record["modules"][p]["weight_sha256_after"]} for p in parts]
    results = {"erase_texts": words, "guide": uce.guide, "preserve_texts": kept,
               "per_epoch": record["per_epoch"]}
    return TextEditResult(edited_parts=parts, edits=edits, results=results)

