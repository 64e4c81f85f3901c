"""Word vectors and POS one-hots for the T2M evaluator's text encoder (humanml3d.md §9.1-9.2).

``WordVectorizer`` reproduces the official ``utils/word_vectorizer.py``: a ``word/POS`` token gets
its word's vector and a 15-way POS one-hot, where a VIP word's class replaces its POS, a POS
outside the table is OTHER, and an out-of-vocabulary word gets the ``unk`` vector with OTHER.
``encode_tokens`` wraps a caption as the official eval dataset does (crop to 20 tokens, add
``sos``/``eos``, pad with ``unk/OTHER`` to 22).

Two sources of vectors, one interface:

* the official GloVe files ``our_vab_data.npy``, ``our_vab_words.pkl``, ``our_vab_idx.pkl``
  (``load_glove``). The .pkl files are pickles, and unpickling can run arbitrary code, so they
  are read by ``_RestrictedUnpickler``, which refuses every class or global lookup: a plain
  list of str and dict of str -> int need none, anything else is not the official file;
* our own vectors for datasets without GloVe (the synthetic set): ``fit_word_vectors`` (PPMI
  co-occurrence + truncated SVD over the token lemmas), saved as npz + json, never pickled.

``mask_toxic_tokens`` replaces toxic words by ``***`` in the token list, as the official HMU
MM-Safe code does; ``***`` words then map to ``unk``/OTHER.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hmu_core.atomic import save_npz, write_json
from hmu_core.data.concepts import MatchMode
from hmu_core.data.matching import word_pattern
from hmu_core.errors import ConfigError, DataError

POS_ENUMERATOR: dict[str, int] = {
    "VERB": 0, "NOUN": 1, "DET": 2, "ADP": 3, "NUM": 4, "AUX": 5, "PRON": 6, "ADJ": 7,
    "ADV": 8, "Loc_VIP": 9, "Body_VIP": 10, "Obj_VIP": 11, "Act_VIP": 12, "Desc_VIP": 13,
    "OTHER": 14,
}
# Official order matters: the first list holding a word wins (no word is in two lists).
VIP_DICT: dict[str, tuple[str, ...]] = {
    "Loc_VIP": ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward",
                "back", "backward", "up", "down", "straight", "curve"),
    "Body_VIP": ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye",
                 "knee", "shoulder", "thigh"),
    "Obj_VIP": ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail",
                "baseball", "basketball"),
    "Act_VIP": ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop",
                "dance", "jump", "turn", "stumble", "dance", "stop", "sit", "lift", "lower",
                "raise", "wash", "stand", "kneel", "stroll", "rub", "bend", "balance", "flap",
                "jog", "shuffle", "lean", "rotate", "spin", "spread", "climb"),
    "Desc_VIP": ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry",
                 "sad", "happily", "angrily", "sadly"),
}
SPECIAL = ("sos", "eos", "unk")  # rows 0, 1, 2 of the official vocabulary
MAX_TEXT_LEN = 20
DETOX_TOKEN = "***"
OWN_JSON = "word_vectors.json"
OWN_NPZ = "word_vectors.npz"
_FORMAT = "hmu-word-vectors"

Token = str | tuple[str, str]


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves no class or global at all (lists, dicts, str, int need none)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name} refused")


def _load_pickle(path: Path) -> Any:
    try:
        return _RestrictedUnpickler(io.BytesIO(path.read_bytes())).load()
    except FileNotFoundError:
        raise DataError(f"{path} not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
            AttributeError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: refused or unreadable ({exc}); the official file is a pickled list of "
            f"words or dict word -> row, nothing else. hmu never unpickles classes or globals"
        ) from None


def split_token(token: Token) -> tuple[str, str]:
    """``"word/POS"`` or ``(word, POS)`` -> ``(word, POS)``; the last '/' separates them."""
    if isinstance(token, tuple):
        word, pos = token
    else:
        word, sep, pos = str(token).rpartition("/")
        if not sep:
            raise DataError(f"token {token!r} is not of the form word/POS")
    return word, pos


class WordVectorizer:
    """Vocabulary of word vectors with the official lookup rule.

    Args:
        vectors: (N, D) word vectors; row i belongs to ``words[i]``.
        words: the N words; must contain ``sos``, ``eos`` and ``unk``.
        source: where they came from (for messages).
    """

    def __init__(self, vectors: np.ndarray, words: Sequence[str], source: str = "<memory>"):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise DataError(f"{source}: {len(words)} words but vectors of shape {vectors.shape}")
        missing = [w for w in SPECIAL if w not in words]
        if missing:
            raise DataError(f"{source}: the vocabulary lacks {missing}; the evaluator's "
                            f"captions need sos, eos and unk")
        self.vectors = vectors
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.source = source
        self._vip = {w: key for key, values in reversed(VIP_DICT.items()) for w in values}

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    @staticmethod
    def pos_onehot(pos: str) -> np.ndarray:
        """(15,) float32 one-hot; a POS outside ``POS_ENUMERATOR`` is OTHER."""
        onehot = np.zeros(len(POS_ENUMERATOR), np.float32)
        onehot[POS_ENUMERATOR.get(pos, POS_ENUMERATOR["OTHER"])] = 1.0
        return onehot

    def lookup(self, token: Token) -> tuple[np.ndarray, np.ndarray]:
        """Official ``WordVectorizer[token]``: ``(vector (D,), pos one-hot (15,))``.

        Words containing the ``***`` detox mark are out of vocabulary by construction.
        """
        word, pos = split_token(token)
        row = None if DETOX_TOKEN in word else self.index.get(word)
        if row is None:
            return self.vectors[self.index["unk"]], self.pos_onehot("OTHER")
        return self.vectors[row], self.pos_onehot(self._vip.get(word, pos))

    @classmethod
    def load_glove(cls, glove_dir: str | os.PathLike, prefix: str = "our_vab") -> WordVectorizer:
        """Official ``glove/<prefix>_{data.npy,words.pkl,idx.pkl}`` (pickles read restricted).

        Raises:
            DataError: a file is missing, refused, or inconsistent.
        """
        root = Path(glove_dir)
        data = root / f"{prefix}_data.npy"
        if not data.is_file():
            raise DataError(f"{data} not found: the GloVe files come in glove.zip (momask-codes "
                            f"prepare/download_glove.sh); or fit our own with fit_word_vectors")
        try:
            vectors = np.load(data, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"{data}: not a plain .npy array ({exc})") from None
        words = _load_pickle(root / f"{prefix}_words.pkl")
        idx = _load_pickle(root / f"{prefix}_idx.pkl")
        if not (isinstance(words, list) and all(isinstance(w, str) for w in words)):
            raise DataError(f"{root / (prefix + '_words.pkl')}: expected a list of words")
        if not (isinstance(idx, dict) and all(isinstance(k, str) and type(v) is int
                                              for k, v in idx.items())):
            raise DataError(f"{root / (prefix + '_idx.pkl')}: expected a dict word -> row")
        bad = [w for w in words if not 0 <= idx.get(w, -1) < len(vectors)]
        if bad:
            raise DataError(f"{root}: words without a valid row in {data.name}: {bad[:5]}")
        # Official: word2vec = {w: vectors[word2idx[w]] for w in words}.
        return cls(np.asarray(vectors)[[idx[w] for w in words]], words, str(root))

    def save(self, directory: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
        """Write ``word_vectors.npz`` (vectors) and ``word_vectors.json`` (words, meta)."""
        root = Path(directory)
        save_npz(root / OWN_NPZ, vectors=self.vectors)
        write_json(root / OWN_JSON, {"format": _FORMAT, "version": 1, "dim": self.dim,
                                     "words": self.words, "meta": dict(meta or {})})
        return root

    @classmethod
    def load_own(cls, directory: str | os.PathLike) -> WordVectorizer:
        """Read what ``save`` wrote. Raises DataError on a missing or malformed file."""
        root = Path(directory)
        try:
            info = json.loads((root / OWN_JSON).read_text(encoding="utf-8"))
            with np.load(root / OWN_NPZ, allow_pickle=False) as npz:
                vectors = npz["vectors"]
        except FileNotFoundError as exc:
            raise DataError(f"{exc.filename} not found; write it with WordVectorizer.save") \
                from None
        except (json.JSONDecodeError, KeyError, ValueError, OSError) as exc:
            raise DataError(f"{root}: unreadable word vectors ({exc})") from None
        if not isinstance(info, dict) or info.get("format") != _FORMAT:
            raise DataError(f"{root / OWN_JSON} is not an hmu word-vector file")
        return cls(vectors, info["words"], str(root))


def load_word_vectors(directory: str | os.PathLike) -> WordVectorizer:
    """Official GloVe (``our_vab_data.npy``) if present in ``directory``, else our own files."""
    root = Path(directory)
    if (root / "our_vab_data.npy").is_file():
        return WordVectorizer.load_glove(root)
    if (root / OWN_JSON).is_file():
        return WordVectorizer.load_own(root)
    raise DataError(f"no word vectors in {root}: expected the official glove/our_vab_* files "
                    f"(glove.zip, momask-codes prepare/download_glove.sh) or {OWN_JSON} + "
                    f"{OWN_NPZ} written by fit_word_vectors(...).save()")


def encode_tokens(tokens: Sequence[Token], vectorizer: WordVectorizer,
                  max_text_len: int = MAX_TEXT_LEN) -> tuple[np.ndarray, np.ndarray, int]:
    """One caption's tokens -> ``(word_embs (L+2, D), pos_ohot (L+2, 15), cap_len)``.

    As the official eval dataset: crop to ``max_text_len`` tokens, wrap in ``sos/OTHER`` ...
    ``eos/OTHER``, pad with ``unk/OTHER`` to ``max_text_len + 2``; ``cap_len`` counts sos/eos.
    """
    if max_text_len < 1:
        raise ConfigError(f"max_text_len must be >= 1, got {max_text_len}")
    body = list(tokens)[:max_text_len]
    wrapped = [("sos", "OTHER"), *body, ("eos", "OTHER")]
    cap_len = len(wrapped)
    wrapped += [("unk", "OTHER")] * (max_text_len + 2 - cap_len)
    pairs = [vectorizer.lookup(t) for t in wrapped]
    return (np.stack([p[0] for p in pairs]).astype(np.float32),
            np.stack([p[1] for p in pairs]), cap_len)


def encode_batch(captions: Sequence[Sequence[Token]], vectorizer: WordVectorizer,
                 max_text_len: int = MAX_TEXT_LEN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Many captions -> ``(B, L+2, D)``, ``(B, L+2, 15)`` float32 and ``(B,)`` int64 lengths,
    in the given order (``Evaluator.text_embeddings`` sorts internally)."""
    if not captions:
        raise DataError("encode_batch needs at least one caption")
    rows = [encode_tokens(c, vectorizer, max_text_len) for c in captions]
    return (np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]),
            np.array([r[2] for r in rows], dtype=np.int64))


def mask_toxic_tokens(tokens: Sequence[Token], keywords: Sequence[str],
                      mode: MatchMode | str = MatchMode.OFFICIAL) -> tuple[list[str], bool]:
    """Replace toxic words by ``***``; returns (``word/POS`` tokens, whether any changed).

    ``official`` reproduces HMU ``eval_fn_t2m.mask_toxic_words``: a case-insensitive regex of
    the keywords, substituted inside each ``word/POS`` string ("kick/VERB" -> "***/VERB",
    "white/ADJ" -> "w***e/ADJ" for ``hit``); a multi-word keyword never matches there. (The
    official code also runs it over the sos/eos/unk padding, where a keyword such as "her" in
    "OTHER" changes no vector but sets the changed flag; here only the caption's tokens count.)
    ``word`` masks the tokens covered by a whole-word, inflection-aware match over the words
    joined by spaces (so "kung fu" masks both tokens).
    """
    mode = MatchMode(mode)
    pairs = [split_token(t) for t in tokens]
    if not keywords:
        raise ConfigError("mask_toxic_tokens needs at least one keyword")
    if mode is MatchMode.OFFICIAL:
        pattern = re.compile("|".join(map(re.escape, keywords)), re.IGNORECASE)
        out = [pattern.sub(DETOX_TOKEN, f"{w}/{p}") for w, p in pairs]
        return out, out != [f"{w}/{p}" for w, p in pairs]
    text = " ".join(w for w, _ in pairs)
    lengths = np.array([len(w) for w, _ in pairs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
    hit = np.zeros(len(pairs), bool)
    for keyword in keywords:
        for match in word_pattern(keyword).finditer(text):
            hit |= (starts < match.end()) & (starts + lengths > match.start())
    out = [f"{DETOX_TOKEN if h else w}/{p}" for (w, p), h in zip(pairs, hit, strict=True)]
    return out, bool(hit.any())


# --------------------------------------------------------------------------- own vectors


def fit_word_vectors(captions: Iterable[Sequence[Token]], dim: int = 300, seed: int = 0, *,
                     window: int = 4, min_count: int = 1) -> WordVectorizer:
    """Fit word vectors on a dataset's captions: PPMI co-occurrence + truncated SVD.

    Why this method: it is deterministic, needs no download, and on a few thousand short
    captions gives vectors where words used in the same contexts are close (Levy & Goldberg
    2014). Each caption is wrapped in sos/eos; words within ``window`` positions co-occur with
    weight 1/distance; PPMI uses the context distribution smoothed by 0.75; vectors are
    U·sqrt(S) of a seeded randomized SVD (exact when the vocabulary is small), signs fixed so
    the largest entry of each component is positive, then rows scaled to norm sqrt(dim)
    (entries of RMS 1, the scale xavier-initialised layers expect). Words seen fewer than
    ``min_count`` times become ``unk``; ``unk`` and unused dims are zero rows/columns.

    Args:
        captions: token lists (``word/POS`` strings or pairs), e.g. ``Caption.tokens``.
        dim: vector width (300 to match the released evaluator's ``dim_word``).
        seed: seeds the randomized SVD.

    Raises:
        ConfigError: bad parameters. DataError: no tokens at all.
    """
    if dim < 1 or window < 1 or min_count < 1:
        raise ConfigError(f"dim, window and min_count must be >= 1; got {dim}, {window}, "
                          f"{min_count}")
    sentences = [[split_token(t)[0] for t in caption] for caption in captions]
    counts = Counter(w for s in sentences for w in s if w not in SPECIAL)
    if not counts:
        raise DataError("fit_word_vectors: the captions hold no tokens")
    vocab = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
             if c >= min_count]
    words = [*SPECIAL, *vocab]
    index = {w: i for i, w in enumerate(words)}
    n = len(words)
    cooc = np.zeros((n, n), np.float64)
    for sentence in sentences:
        ids = [index["sos"], *(index.get(w, index["unk"]) for w in sentence), index["eos"]]
        for i, a in enumerate(ids):
            for offset in range(1, window + 1):
                if i + offset < len(ids):
                    b = ids[i + offset]
                    cooc[a, b] += 1.0 / offset
                    cooc[b, a] += 1.0 / offset
    cooc[index["unk"], :] = cooc[:, index["unk"]] = 0.0  # unk carries no meaning
    row = cooc.sum(axis=1, keepdims=True)
    ctx = cooc.sum(axis=0, keepdims=True) ** 0.75
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(cooc * ctx.sum() / (row * ctx))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
    u, s = _truncated_svd(ppmi, min(dim, n), np.random.default_rng(seed))
    emb = np.zeros((n, dim), np.float64)
    emb[:, : u.shape[1]] = u * np.sqrt(s)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    used = norms > 1e-9 * max(float(norms.max()), 1e-300)
    emb = np.where(used, emb / np.where(used, norms, 1.0) * np.sqrt(dim), 0.0)
    return WordVectorizer(emb.astype(np.float32), words, "fit_word_vectors")


def _truncated_svd(matrix: np.ndarray, k: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Top-k left singular vectors and values; randomized (Halko et al. 2011) when it pays."""
    n = matrix.shape[0]
    if k + 10 >= n:
        u, s, _ = np.linalg.svd(matrix)
    else:
        q = np.linalg.qr(matrix @ rng.standard_normal((n, k + 10)))[0]
        for _ in range(4):  # power iterations sharpen the spectrum of a symmetric PPMI matrix
            q = np.linalg.qr(matrix @ (matrix.T @ q))[0]
        ub, s, _ = np.linalg.svd(q.T @ matrix, full_matrices=False)
        u = q @ ub
    keep = min(k, int((s > s[0] * 1e-9).sum())) if s.size and s[0] > 0 else 0
    u, s = u[:, :keep], s[:keep]  # null-space directions are round-off, not meaning
    signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])])
    return u * np.where(signs == 0, 1.0, signs), s
