"""OpenAI CLIP's BPE tokenizer in pure Python + numpy, equal to ``clip.tokenize``.

The exported bundle runs the text encoder through onnxruntime without torch (DESIGN.md §5), so
the tokenizer lives here, torch-free. It restates ``clip/simple_tokenizer.py`` and
``clip.tokenize`` from their documented behaviour:

1. clean: ``ftfy.fix_text``, ``html.unescape`` twice, strip; collapse whitespace runs to one
   space, strip; lower-case;
2. split with CLIP's pattern (special tokens, the contractions ``'s 't 're 've 'm 'll 'd``,
   letter runs, single digits, runs of anything else; whitespace separates) under IGNORECASE;
3. map each piece's UTF-8 bytes to printable characters, apply the BPE merges in rank order;
4. ``[49406] + ids + [49407]``, zero-padded to 77; with ``truncate=True`` a longer sequence is
   cut to 77 and its last id set to 49407 (MoMask's setting).

Dependencies: ``ftfy`` is required. It rewrites curly quotes, ligatures, full-width forms and
mojibake, all common in captions, and no short re-implementation matches it exactly. The
``regex`` package is *not* needed: step 2 is a hand-written scanner over a table of regex's
Unicode classes (``clip_unicode_classes.json``, made by ``scripts/make_clip_tokenizer_tables.py``),
so it matches ``regex`` on every code point on any Python version. The BPE vocabulary is
vendored beside this file (MIT, see ``LICENSE.openai-clip``); an installed ``openai-clip``
package is the fallback.
"""

from __future__ import annotations

import bisect
import gzip
import html
import importlib.util
import itertools
import json
import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from hmu_core.errors import ConfigError

log = logging.getLogger(__name__)

SOT_TOKEN = 49406
"""``<|startoftext|>``."""
EOT_TOKEN = 49407
"""``<|endoftext|>``; ``argmax`` over the ids finds it, as CLIP's text tower does."""
CONTEXT_LENGTH = 77
VOCAB_SIZE = 49408
VOCAB_FILENAME = "bpe_simple_vocab_16e6.txt.gz"
_HERE = Path(__file__).resolve().parent
VENDORED_VOCAB = _HERE / VOCAB_FILENAME
_CLASSES_FILE = _HERE / "clip_unicode_classes.json"
_SPECIALS = ("<|startoftext|>", "<|endoftext|>")
_CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")  # pattern order: first match wins
# Characters that regex's IGNORECASE (simple case folding) lets match each literal letter of
# the pattern; found by asking regex about every code point. Only 's' has a third form.
_CASE_EQUIV = {c: c + c.upper() for c in "adeflmnorstvx"}
_CASE_EQUIV["s"] += "\u017f"  # LATIN SMALL LETTER LONG S folds to 's'
# regex's \s: Python's str.isspace() minus U+001C..U+001F (table in clip_unicode_classes.json).
_LETTER, _NUMBER, _SPACE, _NONE, _OTHER = range(5)


def find_vocab(path: str | Path | None = None) -> Path:
    """The BPE vocabulary file: ``path`` if given, else the vendored copy, else openai-clip's.

    openai-clip's copy is located with ``importlib.util.find_spec``, which does not run
    ``clip/__init__.py`` (that import needs torchvision; runtime.md §2).

    Raises:
        ConfigError: the file is not found in any of those places.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"CLIP BPE vocabulary {p} not found; pass the path of "
                              f"{VOCAB_FILENAME} (shipped in hmu_core/text/ and in openai-clip)")
        return p
    tried = [VENDORED_VOCAB]
    if VENDORED_VOCAB.is_file():
        return VENDORED_VOCAB
    try:
        spec = importlib.util.find_spec("clip")
    except ValueError:  # a stub "clip" module without __spec__ in sys.modules
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / VOCAB_FILENAME
        tried.append(candidate)
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"CLIP BPE vocabulary {VOCAB_FILENAME} not found (looked in "
        f"{', '.join(str(t) for t in tried)}); reinstall hmu, or `pip install openai-clip`"
    )


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character map (no whitespace or controls)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


@lru_cache(maxsize=1)
def _class_table() -> tuple[list[int], list[int], list[int]]:
    """Sorted range starts, ends and classes from ``clip_unicode_classes.json``."""
    try:
        data = json.loads(_CLASSES_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{_CLASSES_FILE} is missing; reinstall hmu or run "
                          f"scripts/make_clip_tokenizer_tables.py") from exc
    rows = [(a, b, cls) for name, cls in (("letter", _LETTER), ("number", _NUMBER),
                                          ("space", _SPACE), ("none", _NONE))
            for a, b in data[name]]
    rows.sort()
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


@lru_cache(maxsize=65536)
def _char_class(ch: str) -> int:
    """Class of one character in CLIP's pattern: letter, number, space, none or other."""
    starts, ends, classes = _class_table()
    cp = ord(ch)
    i = bisect.bisect_right(starts, cp) - 1
    if i >= 0 and cp <= ends[i]:
        return classes[i]
    return _OTHER


def _whitespace_clean(text: str) -> str:
    """Collapse runs of regex's ``\\s`` to one space, then strip (``whitespace_clean``)."""
    out: list[str] = []
    in_space = False
    for ch in text:
        if _char_class(ch) == _SPACE:
            if not in_space:
                out.append(" ")
            in_space = True
        else:
            out.append(ch)
            in_space = False
    return "".join(out).strip()


def _matches_at(text: str, i: int, literal: str) -> bool:
    """Whether ``literal`` matches ``text[i:]`` case-insensitively, the way regex folds."""
    if i + len(literal) > len(text):
        return False
    for k, want in enumerate(literal):
        got = text[i + k]
        if got != want and got not in _CASE_EQUIV.get(want, ""):
            return False
    return True


def split_pieces(text: str) -> list[str]:
    """CLIP's ``re.findall(pat, text)`` without the regex package (text already cleaned)."""
    pieces: list[str] = []
    i, n = 0, len(text)
    while i < n:
        special = next((s for s in _SPECIALS if _matches_at(text, i, s)), None)
        if special is not None:
            pieces.append(text[i:i + len(special)])
            i += len(special)
            continue
        if text[i] == "'":
            tail = next((c for c in _CONTRACTIONS if _matches_at(text, i + 1, c)), None)
            if tail is not None:
                pieces.append(text[i:i + 1 + len(tail)])
                i += 1 + len(tail)
                continue
        cls = _char_class(text[i])
        if cls == _NUMBER:  # digits are single pieces
            pieces.append(text[i])
            i += 1
        elif cls in (_LETTER, _OTHER):  # maximal run of the same class
            j = i + 1
            while j < n and _char_class(text[j]) == cls:
                j += 1
            pieces.append(text[i:j])
            i = j
        else:  # whitespace, or a code point no alternative matches: findall skips it
            i += 1
    return pieces


class CLIPTokenizer:
    """``clip.tokenize`` without torch: texts -> ``(N, 77)`` int64 ids.

    Args:
        vocab_path: the ``bpe_simple_vocab_16e6.txt.gz`` file; default: see ``find_vocab``.
    Raises:
        ConfigError: ``ftfy`` is not installed, or the vocabulary file is missing.
    """

    def __init__(self, vocab_path: str | Path | None = None) -> None:
        try:
            import ftfy
        except ImportError as exc:
            raise ConfigError(
                "the CLIP tokenizer needs the ftfy package to clean text exactly as "
                "clip.tokenize does; install it: pip install 'ftfy>=6.1'"
            ) from exc
        self._fix_text = ftfy.fix_text
        self.vocab_path = find_vocab(vocab_path)
        with gzip.open(self.vocab_path) as fh:
            lines = fh.read().decode("utf-8").split("\n")
        # As upstream: skip the header line, keep the first 49152 - 256 - 2 merges.
        merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
        byte_chars = list(_byte_to_unicode().values())
        vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
        vocab += list(_SPECIALS)
        self.encoder: dict[str, int] = {tok: i for i, tok in enumerate(vocab)}
        if len(self.encoder) != VOCAB_SIZE or self.encoder[_SPECIALS[1]] != EOT_TOKEN:
            raise ConfigError(f"{self.vocab_path} is not CLIP's BPE vocabulary: it gives "
                              f"{len(self.encoder)} tokens, expected {VOCAB_SIZE}")
        self.bpe_ranks: dict[tuple[str, ...], int] = {m: r for r, m in enumerate(merges)}
        self._cache: dict[str, tuple[str, ...]] = {s: (s,) for s in _SPECIALS}

    def clean(self, text: str) -> str:
        """ftfy, double HTML unescape, whitespace collapse, lower-case (``encode``'s prelude)."""
        text = html.unescape(html.unescape(self._fix_text(text))).strip()
        return _whitespace_clean(text).lower()

    def _bpe(self, token: str) -> tuple[str, ...]:
        """Merge the characters of one byte-mapped piece by rank; the last gets ``</w>``."""
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        word = [*token[:-1], token[-1] + "</w>"]
        ranks = self.bpe_ranks
        while len(word) > 1:
            pairs = list(itertools.pairwise(word))
            best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if best not in ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(word):  # merge every left-to-right, non-overlapping occurrence
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        result = tuple(word)
        if len(self._cache) > 200_000:  # bound memory on endless novel input
            self._cache = {s: (s,) for s in _SPECIALS}
        self._cache[token] = result
        return result

    def encode(self, text: str) -> list[int]:
        """BPE ids of one text, without start/end tokens (``SimpleTokenizer.encode``)."""
        byte_map = _byte_to_unicode()
        ids: list[int] = []
        for piece in split_pieces(self.clean(text)):
            mapped = "".join(byte_map[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(mapped))
        return ids

    def tokenize(self, texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH,
                 truncate: bool = True) -> np.ndarray:
        """Texts -> ``(N, context_length)`` int64 ids: sot, BPE ids, eot, zero padding.

        Same ids as ``clip.tokenize(texts, context_length, truncate)``; int64 (not int32)
        because onnxruntime wants int64 ids. ``truncate`` defaults to True, MoMask's setting.

        Raises:
            ConfigError: a text is not a string, or it is too long and ``truncate`` is False.
        """
        if isinstance(texts, str):
            texts = [texts]
        rows = check_texts(texts)
        out = np.zeros((len(rows), context_length), dtype=np.int64)
        for r, text in enumerate(rows):
            ids = [SOT_TOKEN, *self.encode(text), EOT_TOKEN]
            if len(ids) > context_length:
                if not truncate:
                    raise ConfigError(
                        f"text {r} ({text[:60]!r}...) has {len(ids)} CLIP tokens, more than "
                        f"the context length {context_length}; shorten it or pass truncate=True"
                    )
                ids = ids[:context_length]
                ids[-1] = EOT_TOKEN
            out[r, :len(ids)] = ids
        return out

    __call__ = tokenize


def check_texts(texts: Iterable[object]) -> list[str]:
    """The texts as a list of str, or ``ConfigError`` naming the first non-string."""
    rows = list(texts)
    for i, t in enumerate(rows):
        if not isinstance(t, str):
            raise ConfigError(f"texts[{i}] is {type(t).__name__}, not str; pass a list of strings")
    return rows


def eot_positions(ids: np.ndarray) -> np.ndarray:
    """Index of the end token in each row of ``(N, L)`` ids (its id is the largest)."""
    return np.asarray(ids).argmax(axis=-1)

