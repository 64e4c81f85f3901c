"""Word vectors: the official lookup rule on GloVe-layout files, the restricted unpickler, our own
PPMI-SVD vectors (deterministic, meaningful, saved without pickles), caption encoding and the
token-level toxic-word masking of the official MM-Safe code."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from hmu_core.errors import ConfigError, DataError
from hmu_core.eval.word_vectors import (
    POS_ENUMERATOR,
    VIP_DICT,
    WordVectorizer,
    encode_batch,
    encode_tokens,
    fit_word_vectors,
    load_word_vectors,
    mask_toxic_tokens,
)

WORDS = ["sos", "eos", "unk", "a", "man", "kick", "left", "ball", "quickly", "and"]


@pytest.fixture
def glove_dir(tmp_path: Path) -> Path:
    """Official layout: rows stored in a different order than the word list, as idx allows."""
    rows = np.arange(len(WORDS) * 4, dtype=np.float64).reshape(len(WORDS), 4)
    idx = {w: len(WORDS) - 1 - i for i, w in enumerate(WORDS)}
    np.save(tmp_path / "our_vab_data.npy", rows[::-1].copy())
    (tmp_path / "our_vab_words.pkl").write_bytes(pickle.dumps(WORDS))
    (tmp_path / "our_vab_idx.pkl").write_bytes(pickle.dumps(idx))
    return tmp_path


def _onehot(name: str) -> np.ndarray:
    return np.eye(15, dtype=np.float32)[POS_ENUMERATOR[name]]


def test_released_pos_table_and_vip_lists(conformance_dir: Path) -> None:
    released = json.loads((conformance_dir / "t2m_evaluator_released_shapes.json").read_text())
    assert released["POS_enumerator"] == POS_ENUMERATOR
    assert {k: list(v) for k, v in VIP_DICT.items()} == released["VIP_dict"]


def test_official_lookup_rule(glove_dir: Path) -> None:
    vec = load_word_vectors(glove_dir)
    row = {w: np.arange(4 * i, 4 * i + 4) for i, w in enumerate(WORDS)}
    word, pos = vec.lookup("man/NOUN")
    assert np.array_equal(word, row["man"]) and np.array_equal(pos, _onehot("NOUN"))
    assert np.array_equal(vec.lookup("kick/VERB")[1], _onehot("Act_VIP"))  # VIP replaces POS
    assert np.array_equal(vec.lookup(("left", "VERB"))[1], _onehot("Loc_VIP"))
    assert np.array_equal(vec.lookup("quickly/ADV")[1], _onehot("Desc_VIP"))
    assert np.array_equal(vec.lookup("and/CCONJ")[1], _onehot("OTHER"))  # not in the table
    for oov in ("jump/VERB", "***/VERB", "***s/NOUN"):  # VIP word out of vocabulary, detox mark
        word, pos = vec.lookup(oov)
        assert np.array_equal(word, row["unk"]) and np.array_equal(pos, _onehot("OTHER"))
    with pytest.raises(DataError, match="word/POS"):
        vec.lookup("man")


def test_encode_tokens_crops_wraps_and_pads(glove_dir: Path) -> None:
    vec = load_word_vectors(glove_dir)
    words, pos, cap_len = encode_tokens(["a/DET", "man/NOUN", "kick/VERB"], vec)
    assert words.shape == (22, 4) and pos.shape == (22, 15) and cap_len == 5
    assert words.dtype == np.float32 and pos.dtype == np.float32
    assert np.array_equal(words[0], vec.lookup("sos/OTHER")[0])
    assert np.array_equal(words[4], vec.lookup("eos/OTHER")[0])
    assert np.array_equal(words[5:], np.repeat(vec.lookup("unk/OTHER")[0][None], 17, 0))
    assert (pos[[0, 4, 21], POS_ENUMERATOR["OTHER"]] == 1).all()
    long = ["man/NOUN"] * 25
    words, _, cap_len = encode_tokens(long, vec)
    assert cap_len == 22 and np.array_equal(words[21], vec.lookup("eos/OTHER")[0])
    _, _, exact = encode_tokens(long[:20], vec)
    assert exact == 22
    batch_words, _, lens = encode_batch([long, ["a/DET"]], vec)
    assert batch_words.shape == (2, 22, 4) and lens.tolist() == [22, 3]
    with pytest.raises(DataError):
        encode_batch([], vec)


class _Evil:
    def __reduce__(self) -> tuple:
        return (print, ("pwned",))


@pytest.mark.parametrize("payload", [_Evil(), {"man": np.int64(1)}, {1, 2}])
def test_restricted_unpickler_refuses_globals(glove_dir: Path, payload: object,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (glove_dir / "our_vab_idx.pkl").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataError, match="refused"):
        WordVectorizer.load_glove(glove_dir)
    assert "pwned" not in capsys.readouterr().out


def test_glove_errors(glove_dir: Path, tmp_path: Path) -> None:
    (glove_dir / "our_vab_idx.pkl").write_bytes(pickle.dumps(["not", "a", "dict"]))
    with pytest.raises(DataError, match="dict word -> row"):
        WordVectorizer.load_glove(glove_dir)
    with pytest.raises(DataError, match="download_glove"):
        load_word_vectors(tmp_path / "nothing")
    with pytest.raises(DataError, match="lacks"):
        WordVectorizer(np.zeros((2, 3)), ["a", "b"])


TOY = [
    ["a/DET", f"{who}/NOUN", f"{verb}/VERB", f"{where}/ADV"]
    for who in ("man", "person", "woman", "figure")
    for verb in ("walk", "run", "jog")
    for where in ("forward", "backward", "slowly")
] + [
    ["the/DET", f"{thing}/NOUN", "be/AUX", "red/ADJ"] for thing in ("ball", "box")
] + [["a/DET", "red/ADJ", f"{thing}/NOUN"] for thing in ("ball", "box")]


def _nearest(vec: WordVectorizer, word: str) -> str:
    v = vec.vectors / np.maximum(np.linalg.norm(vec.vectors, axis=1, keepdims=True), 1e-12)
    sims = v @ v[vec.index[word]]
    sims[vec.index[word]] = -np.inf
    return vec.words[int(np.argmax(sims))]


def test_own_vectors_are_meaningful_and_deterministic(tmp_path: Path) -> None:
    vec = fit_word_vectors(TOY, dim=16, seed=0)
    assert vec.words[:3] == ["sos", "eos", "unk"] and vec.dim == 16
    assert _nearest(vec, "man") in {"person", "woman", "figure"}
    assert _nearest(vec, "walk") in {"run", "jog"}
    assert _nearest(vec, "ball") == "box"
    assert np.allclose(np.linalg.norm(vec.vectors[3:], axis=1), 4.0)  # sqrt(dim)
    assert not vec.vectors[vec.index["unk"]].any()
    again = fit_word_vectors(TOY, dim=16, seed=0)
    assert np.array_equal(vec.vectors, again.vectors)
    big = fit_word_vectors(TOY, dim=4, seed=1)  # randomized SVD branch (vocab > dim + 10)
    assert np.array_equal(big.vectors, fit_word_vectors(TOY, dim=4, seed=1).vectors)
    vec.save(tmp_path, meta={"seed": 0})
    assert not list(tmp_path.glob("*.pkl"))
    loaded = load_word_vectors(tmp_path)
    assert loaded.words == vec.words and np.array_equal(loaded.vectors, vec.vectors)
    words, _, cap_len = encode_tokens(["a/DET", "man/NOUN", "kick/VERB"], loaded)
    assert words.shape == (22, 16) and cap_len == 5
    assert np.array_equal(words[3], loaded.vectors[loaded.index["unk"]])  # kick not in TOY


def test_own_vectors_bad_inputs() -> None:
    with pytest.raises(ConfigError):
        fit_word_vectors(TOY, dim=0)
    with pytest.raises(DataError, match="no tokens"):
        fit_word_vectors([[]])


def test_mask_toxic_tokens_official_and_word_modes() -> None:
    tokens = ["a/DET", "man/NOUN", "Kick/VERB", "a/DET", "white/ADJ", "ball/NOUN"]
    masked, changed = mask_toxic_tokens(tokens, ["kick", "hit"])
    assert changed and masked == ["a/DET", "man/NOUN", "***/VERB", "a/DET", "w***e/ADJ",
                                  "ball/NOUN"]
    masked, changed = mask_toxic_tokens(tokens, ["kick", "hit"], "word")
    assert masked[2] == "***/VERB" and masked[4] == "white/ADJ"
    pairs = [("do", "VERB"), ("kung", "PROPN"), ("fu", "PROPN")]
    assert mask_toxic_tokens(pairs, ["kung fu"])[1] is False  # official: one token at a time
    assert mask_toxic_tokens(pairs, ["kung fu"], "word")[0] == ["do/VERB", "***/PROPN",
                                                                 "***/PROPN"]
    assert mask_toxic_tokens(["a/DET", "man/NOUN"], ["kick"]) == (["a/DET", "man/NOUN"], False)
    with pytest.raises(ConfigError):
        mask_toxic_tokens(tokens, [])
