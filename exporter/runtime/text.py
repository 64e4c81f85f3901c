"""Prompt tokenizers for a bundle's text encoder, torch-free: CLIP BPE or BERT WordPiece.

Each returns the feeds of ``text_encoder.onnx``. CLIP ids are cut after the last end token of
the batch (CLIP attention is causal, so the end-token features are unchanged, runtime.md §2)
and the graph takes that dynamic length; WordPiece gives ids and an attention mask padded to
the longest prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from exporter.runtime.wordpiece import WordPieceTokenizer
from hmu_core.errors import BundleError
from hmu_core.text.clip_tokenizer import CLIPTokenizer, eot_positions

Feeds = dict[str, np.ndarray]


def make_tokenizer(root: Path, spec: dict[str, Any]) -> Callable[[list[str]], Feeds]:
    """The tokenizer the manifest's ``text_encoder`` entry ``spec`` names, built from the
    tokenizer files under the bundle directory ``root``.

    Raises:
        BundleError: a tokenizer file is missing from the manifest.
        ConfigError: the CLIP tokenizer's ftfy dependency is not installed.
    """
    files = spec.get("files", {})
    max_length = int(spec.get("max_length", 0))
    if spec["tokenizer"] == "bert-wordpiece":
        if "vocab" not in files:
            raise BundleError(f"bundle {root}: text_encoder.files lacks the WordPiece "
                              f"vocab; re-export the bundle")
        wordpiece = WordPieceTokenizer(root / files["vocab"], max_length)

        def bert(texts: list[str]) -> Feeds:
            ids, mask = wordpiece(texts)
            return {"ids": ids, "attention_mask": mask}

        return bert
    if "bpe" not in files:
        raise BundleError(f"bundle {root}: text_encoder.files lacks the CLIP BPE "
                          f"vocabulary; re-export the bundle")
    clip = CLIPTokenizer(root / files["bpe"])

    def clip_feeds(texts: list[str]) -> Feeds:
        ids = clip.tokenize(texts, context_length=max_length, truncate=True)
        return {"ids": np.ascontiguousarray(ids[:, : int(eot_positions(ids).max()) + 1])}

    return clip_feeds
