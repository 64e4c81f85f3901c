"""Prompt tokenizers for a bundle's text encoder, torch-free: CLIP BPE or BERT WordPiece.

Each returns the feeds of ``text_encoder.onnx``. CLIP ids are cut after the last end token of
the batch (CLIP attention is causal, so the end-token features are unchanged, runtime.md §2)
and the graph takes that dynamic length; WordPiece gives ids and an attention mask padded to
the longest prompt.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from exporter.runtime.wordpiece import WordPieceTokenizer
from hmu_core.errors import BundleError, ConfigError
from hmu_core.text.clip_tokenizer import CLIPTokenizer, eot_positions

Feeds = dict[str, np.ndarray]


def make_tokenizer(root: Path, spec: dict[str, Any]) -> Callable[[list[str]], Feeds]:
    """The tokenizer the manifest's ``text_encoder`` entry ``spec`` names, built from the
    tokenizer files under the bundle directory ``root``.

    ``spec`` is checked by ``schema.check_text_encoder``; the tokenizer files must give the
    ``vocab_size`` ids the text encoder graph embeds (a trimmed or swapped vocabulary would
    silently map words to other embeddings).

    Raises:
        BundleError: a tokenizer file whose vocabulary is not ``text_encoder.vocab_size``.
        ConfigError: the CLIP tokenizer's ftfy dependency is not installed.
    """
    files, max_length, size = spec["files"], spec["max_length"], spec["vocab_size"]
    if spec["tokenizer"] == "bert-wordpiece":
        wordpiece = WordPieceTokenizer(root / files["vocab"], max_length)
        if wordpiece.size != size:
            raise BundleError(f"bundle {root}: {files['vocab']} holds {wordpiece.size} tokens "
                              f"but text_encoder.vocab_size (the graph's embedding) is {size}: "
                              f"the vocabulary was changed; re-export the bundle")

        def bert(texts: list[str]) -> Feeds:
            ids, mask = wordpiece(texts)
            return {"ids": ids, "attention_mask": mask}

        return bert
    try:
        clip = CLIPTokenizer(root / files["bpe"])
    except (ConfigError, OSError, EOFError, ValueError) as exc:  # gzip, UTF-8 errors: ValueError
        if importlib.util.find_spec("ftfy") is None:
            raise  # the ConfigError that says to install ftfy
        raise BundleError(f"bundle {root}: {files['bpe']} is not CLIP's BPE vocabulary of "
                          f"{size} tokens ({str(exc)[:160]}); re-export the bundle") from None

    def clip_feeds(texts: list[str]) -> Feeds:
        ids = clip.tokenize(texts, context_length=max_length, truncate=True)
        return {"ids": np.ascontiguousarray(ids[:, : int(eot_positions(ids).max()) + 1])}

    return clip_feeds
