"""The pure-Python WordPiece tokenizer gives the ids of the ``tokenizers`` library."""

from __future__ import annotations

import json

import numpy as np
import pytest

from exporter.runtime.wordpiece import WordPieceTokenizer, normalize, pre_tokenize

TEXTS = [
    "a person walks forward and waves.",
    "Crème brûlée, naïve café! Ångström ÀÉÎÕÜ ǅ",
    "xqzvbnm-wibblefrotz's 3.14 $100 <tag> a|b ~c^d @home #1 50%",
    "日本語のテキスト 中文 한국어",
    "hello [MASK] world [CLS]x [unk]",
    "tabs\tand\nnewlines\r\x00ctrl\u200bzero\u00a0nbsp\u3000wide",
    "İstanbul ΣΊΣΥΦΟΣ straße ﬁ",
    "x" * 150 + " ok",
    "emoji 🙂 test — dash “quotes” ‘single’ un‐hyphen…ellipsis",
    "   ",
    "a\u0301b\u0308 supercalifragilisticexpialidocious antidisestablishmentarianism",
    "word " * 300,
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tokenizers = pytest.importorskip("tokenizers")
    from hmu_core.text.minilm import find_minilm_dir

    path = find_minilm_dir() / "tokenizer.json"
    ref = tokenizers.Tokenizer.from_file(str(path))
    ref.no_padding()
    ref.enable_truncation(max_length=256)
    ref.enable_padding(pad_id=0, pad_token="[PAD]")
    vocab = json.loads(path.read_text(encoding="utf-8"))["model"]["vocab"]
    file = tmp_path_factory.mktemp("wp") / "vocab.txt"
    file.write_text("".join(f"{t}\n" for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])),
                    encoding="utf-8")
    return ref, WordPieceTokenizer(file, 256)


@pytest.mark.parametrize("text", TEXTS)
def test_same_ids_as_tokenizers(reference, text):
    ref, ours = reference
    ids, mask = ours([text])
    assert ids[0].tolist() == ref.encode(text).ids
    assert mask.sum() == len(ref.encode(text).ids)


def test_batch_padding_and_truncation(reference):
    ref, ours = reference
    enc = ref.encode_batch(TEXTS)
    ids, mask = ours(TEXTS)
    np.testing.assert_array_equal(ids, [e.ids for e in enc])
    np.testing.assert_array_equal(mask, [e.attention_mask for e in enc])
    assert ids.shape[1] == 256 and ids[-1, -1] == ours.sep_id  # the long text, cut to 256


def test_steps():
    assert normalize("Héllo\tWörld\x07") == "hello world"
    assert pre_tokenize("it's ok!") == ["it", "'", "s", "ok", "!"]


def test_bad_vocab(tmp_path):
    from hmu_core.errors import BundleError

    (tmp_path / "v.txt").write_text("a\nb\n")
    with pytest.raises(BundleError, match="lacks"):
        WordPieceTokenizer(tmp_path / "v.txt")
    with pytest.raises(BundleError, match="cannot read"):
        WordPieceTokenizer(tmp_path / "missing.txt")
