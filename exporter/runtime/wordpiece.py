"""BERT's uncased WordPiece tokenizer in pure Python: the ids of Hugging Face ``tokenizers``.

The runtime cannot use the ``tokenizers`` package (a compiled wheel the Blender add-on does not
ship), so this restates what all-MiniLM-L6-v2's ``tokenizer.json`` configures:

1. added tokens (``[PAD] [UNK] [CLS] [SEP] [MASK]``) are matched verbatim first and keep their
   ids (they are not normalised);
2. ``BertNormalizer``: drop NUL, U+FFFD and control characters (categories C*, but tab, CR, LF
   are whitespace), map whitespace to a space, pad CJK ideographs with spaces, strip accents
   (NFD, drop Mn), lower-case;
3. ``BertPreTokenizer``: split on whitespace, every punctuation character (ASCII punctuation or
   Unicode P*) is a word of its own;
4. ``WordPiece``: greedy longest match with the ``##`` prefix; a word longer than 100 characters
   or with an unmatched piece becomes ``[UNK]``;
5. ``[CLS] ids [SEP]``, truncated to ``max_length`` ids in all (the specials kept), padded with
   ``[PAD]`` to the longest text of the batch, with an attention mask.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hmu_core.errors import BundleError

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_CHARS_PER_WORD = 100
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
_ASCII_PUNCT = frozenset(string.punctuation)


def _is_whitespace(ch: str) -> bool:
    # Called only on non-control characters (controls are dropped first).
    return ch in "\t\n\r" or ch.isspace()


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(a <= cp <= b for a, b in _CJK)


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def normalize(text: str) -> str:
    """BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase)."""
    out = []
    for ch in text:
        if ch in ("\x00", "\ufffd") or _is_control(ch):
            continue
        if _is_whitespace(ch):
            out.append(" ")
        elif _is_cjk(ch):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    decomposed = unicodedata.normalize("NFD", "".join(out))
    # Per character, as tokenizers does: no final-sigma rule (Python's str.lower() has one).
    return "".join(c.lower() for c in decomposed if unicodedata.category(c) != "Mn")


def pre_tokenize(text: str) -> list[str]:
    """Whitespace split, then punctuation characters as single words."""
    words: list[str] = []
    for chunk in text.split():
        current = ""
        for ch in chunk:
            if _is_punct(ch):
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


class WordPieceTokenizer:
    """Texts -> ``(ids, attention_mask)`` int64 ``(N, L)``, equal to ``tokenizers``' output.

    Args:
        vocab_path: ``vocab.txt``, one token a line, line number = id.
        max_length: ids per text including ``[CLS]``/``[SEP]`` (MiniLM: 256).
    Raises:
        BundleError: the vocabulary is unreadable or lacks a special token.
    """

    def __init__(self, vocab_path: str | Path, max_length: int = 256) -> None:
        try:
            lines = Path(vocab_path).read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"cannot read WordPiece vocabulary {vocab_path}: {exc}") from None
        if lines and lines[-1] == "":
            lines.pop()
        self.vocab = {tok: i for i, tok in enumerate(lines)}
        if len(self.vocab) != len(lines):
            raise BundleError(f"WordPiece vocabulary {vocab_path} repeats a token; re-export")
        self.size = len(lines)
        missing = [s for s in SPECIALS if s not in self.vocab]
        if missing:
            raise BundleError(f"WordPiece vocabulary {vocab_path} lacks {missing}; re-export")
        if max_length < 3:
            raise BundleError(f"max_length must be >= 3, got {max_length}")
        self.max_length = max_length
        self.pad_id, self.unk_id = self.vocab["[PAD]"], self.vocab["[UNK]"]
        self.cls_id, self.sep_id = self.vocab["[CLS]"], self.vocab["[SEP]"]

    def _word(self, word: str) -> list[int]:
        if len(word) > MAX_CHARS_PER_WORD:
            return [self.unk_id]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:
                return [self.unk_id]
            start = end
        return ids

    def _split_specials(self, text: str) -> list[tuple[str, bool]]:
        """Split on verbatim special tokens (leftmost, longest first): (segment, is_special)."""
        parts: list[tuple[str, bool]] = []
        i = start = 0
        while i < len(text):
            hit = next((s for s in SPECIALS if text.startswith(s, i)), None)
            if hit is None:
                i += 1
                continue
            if i > start:
                parts.append((text[start:i], False))
            parts.append((hit, True))
            i = start = i + len(hit)
        if start < len(text):
            parts.append((text[start:], False))
        return parts

    def encode(self, text: str) -> list[int]:
        """Ids of one text without ``[CLS]``/``[SEP]`` and untruncated."""
        ids: list[int] = []
        for segment, special in self._split_specials(text):
            if special:
                ids.append(self.vocab[segment])
                continue
            for word in pre_tokenize(normalize(segment)):
                ids.extend(self._word(word))
        return ids

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = [[self.cls_id, *self.encode(t)[: self.max_length - 2], self.sep_id] for t in texts]
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids, mask
