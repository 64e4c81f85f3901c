"""Request checks: the prompts of a generation request (both worlds refuse the same text).

Stdlib only; the request loop (``hmu_core.sampling.loop``) calls it before any network runs.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from hmu_core.errors import ConfigError

MAX_PROMPT_CHARS = 1000
"""Longest prompt accepted (CLIP reads 77 tokens, MiniLM 256; longer text is a mistake)."""
_BOM = "\ufeff"
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")  # Hangul fillers (category Lo)


def _visible(ch: str) -> bool:
    """A letter, digit or symbol that shows: what makes a prompt describe something."""
    return unicodedata.category(ch)[0] in "LNS" and ch not in _INVISIBLE_LETTERS


def check_prompts(prompts: Any) -> list[str]:
    """Prompts as a list of clean text, a leading UTF-8 byte-order mark removed (it is an
    artefact of the file the prompt came from, not part of the text that is recorded).

    Raises:
        ConfigError: not a str or a list of str (bytes: decode them first), no prompt, a prompt
            over 1000 characters, one with no visible letter, digit or symbol (empty, NUL-only,
            zero-width-only), or one holding a control character or a lone surrogate.
    """
    if isinstance(prompts, bytes | bytearray):
        raise ConfigError("the prompt is bytes; decode it to text first (data.decode('utf-8'))")
    if isinstance(prompts, str):
        items: list[Any] = [prompts]
    elif isinstance(prompts, Sequence):
        items = list(prompts)
    else:
        raise ConfigError(f"prompts must be a str or a list of str, got "
                          f"{type(prompts).__name__}")
    if not items:
        raise ConfigError("give one or more prompts")
    texts = []
    for i, text in enumerate(items):
        if isinstance(text, bytes | bytearray):
            raise ConfigError(f"prompt {i} is bytes; decode it to text first "
                              f"(data.decode('utf-8'))")
        if not isinstance(text, str):
            raise ConfigError(f"prompt {i} is a {type(text).__name__}, not text; describe a "
                              f"motion")
        text = text.removeprefix(_BOM)
        if len(text) > MAX_PROMPT_CHARS:
            raise ConfigError(f"prompt {i} has {len(text)} characters; keep prompts under "
                              f"{MAX_PROMPT_CHARS}")
        bad = next((c for c in text if (unicodedata.category(c) == "Cc" and c not in "\t\n\r")
                    or unicodedata.category(c) == "Cs"), None)
        if bad is not None:
            raise ConfigError(f"prompt {i} holds the control character or lone surrogate "
                              f"U+{ord(bad):04X}; remove it")
        if not any(_visible(c) for c in text):
            raise ConfigError(f"prompt {i} is empty or invisible ({text!r}); describe a motion")
        texts.append(text)
    return texts
