"""CLIP text tower: official math, trimming, loading from state dicts and TorchScript archives."""

from __future__ import annotations

import logging
import math
import pickle

import pytest
import torch

from hmu_core.errors import ConfigError
from hmu_core.models.transformer_common import TextEncoder
from hmu_core.text import clip_text
from hmu_core.text.clip_text import (
    CLIP_WEIGHTS_ENV,
    CLIPTextConfig,
    CLIPTextEncoder,
    CLIPTextTower,
    config_from_state_dict,
    load_clip_text_tower,
    read_clip_weights,
)
from hmu_core.text.clip_tokenizer import CLIPTokenizer
from hmu_core.text.torchscript_weights import is_torchscript_archive, read_torchscript_tensors

SMALL = CLIPTextConfig(embed_dim=32, width=128, heads=2, layers=2)  # heads = width // 64
TEXTS = ["a person walks forward and waves", "x", "someone jumps up and down three times",
         "walk " * 100]


@pytest.fixture(scope="module")
def tok() -> CLIPTokenizer:
    return CLIPTokenizer()


@pytest.fixture(scope="module")
def tower() -> CLIPTextTower:
    torch.manual_seed(0)
    t = CLIPTextTower(SMALL).eval()
    with torch.no_grad():  # non-zero biases, so that a dropped bias would show
        for name, p in t.named_parameters():
            if name.endswith("bias"):
                p.normal_(std=0.05)
    return t


def _reference(t: CLIPTextTower, ids: torch.Tensor) -> torch.Tensor:
    """CLIP's encode_text written out with plain tensor ops over all 77 positions."""
    cfg = t.config
    x = t.token_embedding.weight[ids] + t.positional_embedding  # (B, 77, w)
    n, d = x.shape[1], cfg.width // cfg.heads
    causal = torch.full((n, n), float("-inf")).triu(1)

    def ln(y, mod):
        mu = y.mean(-1, keepdim=True)
        var = y.var(-1, unbiased=False, keepdim=True)
        return (y - mu) / torch.sqrt(var + mod.eps) * mod.weight + mod.bias

    for blk in t.transformer.resblocks:
        h = ln(x, blk.ln_1)
        qkv = h @ blk.attn.in_proj_weight.T + blk.attn.in_proj_bias
        q, k, v = (z.reshape(z.shape[0], n, cfg.heads, d).transpose(1, 2)
                   for z in qkv.chunk(3, dim=-1))
        att = (q @ k.transpose(-1, -2) / math.sqrt(d) + causal).softmax(-1) @ v
        att = att.transpose(1, 2).reshape(x.shape)
        x = x + att @ blk.attn.out_proj.weight.T + blk.attn.out_proj.bias
        h = ln(x, blk.ln_2) @ blk.mlp.c_fc.weight.T + blk.mlp.c_fc.bias
        h = h * torch.sigmoid(1.702 * h)
        x = x + h @ blk.mlp.c_proj.weight.T + blk.mlp.c_proj.bias
    x = ln(x, t.ln_final)
    return x[torch.arange(len(ids)), ids.argmax(-1)] @ t.text_projection


def test_forward_equals_reference_computation(tower, tok):
    ids = torch.from_numpy(tok.tokenize(TEXTS))
    with torch.no_grad():
        ours, ref = tower(ids, trim=False), _reference(tower, ids)
    assert ours.shape == (len(TEXTS), SMALL.embed_dim) and ours.dtype == torch.float32
    assert torch.allclose(ours, ref, atol=2e-5, rtol=1e-4), (ours - ref).abs().max()


def test_trim_gives_the_same_features(tower, tok):
    ids = torch.from_numpy(tok.tokenize(TEXTS[:3]))  # longest needs 9 of 77 positions
    with torch.no_grad():
        full, trimmed = tower(ids, trim=False), tower(ids, trim=True)
    assert (full - trimmed).abs().max() < 1e-5
    # a batch's features do not depend on the other texts in it
    with torch.no_grad():
        alone = tower(ids[1:2], trim=True)
    assert (alone - full[1:2]).abs().max() < 1e-5


def test_equals_openai_model_bit_for_bit(tower, tok, openai_clip):
    CLIP = openai_clip("model").CLIP  # skips without openai-clip

    official = CLIP(embed_dim=SMALL.embed_dim, image_resolution=32, vision_layers=1,
                    vision_width=64, vision_patch_size=32, context_length=77, vocab_size=49408,
                    transformer_width=SMALL.width, transformer_heads=SMALL.heads,
                    transformer_layers=SMALL.layers).eval()
    missing, unexpected = official.load_state_dict(tower.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("visual.", "logit_scale")) for k in missing)
    ids = torch.from_numpy(tok.tokenize(TEXTS))
    with torch.no_grad():
        assert torch.equal(official.encode_text(ids.int()), tower(ids, trim=False))


def _full_clip_state(tower: CLIPTextTower) -> dict[str, torch.Tensor]:
    """A full-CLIP-like state dict: fp16 text weights plus vision keys and scalars."""
    state = {k: v.half() for k, v in tower.state_dict().items()}
    state.update({"visual.conv1.weight": torch.zeros(4, 3, 2, 2), "logit_scale": torch.tensor(4.6),
                  "input_resolution": torch.tensor(224), "vocab_size": torch.tensor(49408)})
    return state


def test_state_dict_round_trip(tower, tok, tmp_path):
    path = tmp_path / "clip.pt"
    torch.save(_full_clip_state(tower), path)
    loaded = load_clip_text_tower(path)
    assert loaded.config == SMALL and not loaded.training
    ids = torch.from_numpy(tok.tokenize(TEXTS))
    half = CLIPTextTower(SMALL)
    half.load_state_dict({k: v.half().float() for k, v in tower.state_dict().items()})
    with torch.no_grad():  # fp16 weights widened to fp32, as clip.load(device="cpu")
        assert torch.equal(loaded(ids, trim=False), half.eval()(ids, trim=False))
    # MoMask-style checkpoint holding clip_model.* and a wrapped state_dict
    wrapped = tmp_path / "momask_like.tar"
    torch.save({"state_dict": {f"clip_model.{k}": v for k, v in tower.state_dict().items()}},
               wrapped)
    assert set(read_clip_weights(wrapped)) == set(tower.state_dict())


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_torchscript_archive(tower, tok, tmp_path, monkeypatch, caplog):
    ids = torch.from_numpy(tok.tokenize(TEXTS[:2]))
    path = tmp_path / "ViT-B-32.pt"
    torch.jit.save(torch.jit.trace(tower, (ids,)), str(path))
    assert is_torchscript_archive(path)
    direct = read_torchscript_tensors(path)
    # plus the non-persistent attn_mask buffer, which the loader ignores
    assert set(direct) == {*tower.state_dict(), "attn_mask"}
    with torch.no_grad():
        assert torch.equal(load_clip_text_tower(path)(ids), tower(ids))
    # an archive the allow-list reader cannot handle falls back to torch.jit.load
    def refuse(_path):
        raise pickle.UnpicklingError("refusing global os.system")

    monkeypatch.setattr(clip_text, "read_torchscript_tensors", refuse)
    with torch.no_grad(), caplog.at_level(logging.WARNING):
        assert torch.equal(load_clip_text_tower(path)(ids), tower(ids))
    assert "falling back to torch.jit.load" in caplog.text


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_official_torchscript_layout(tok, tmp_path, openai_clip):
    """A traced official CLIP with fp16 weights, as OpenAI's released ViT-B-32.pt."""
    model = openai_clip("model")
    torch.manual_seed(1)
    official = model.CLIP(embed_dim=16, image_resolution=32, vision_layers=1, vision_width=64,
                          vision_patch_size=32, context_length=77, vocab_size=49408,
                          transformer_width=64, transformer_heads=1, transformer_layers=2).eval()
    model.convert_weights(official)
    ids = torch.from_numpy(tok.tokenize(TEXTS[:2]))
    path = tmp_path / "ViT-B-32.pt"
    torch.jit.save(torch.jit.trace_module(official, {"encode_text": ids},
                                                 check_trace=False), str(path))
    jit_state = torch.jit.load(str(path), map_location="cpu").state_dict()
    direct = read_torchscript_tensors(path)
    assert set(direct) == set(jit_state)
    assert all(torch.equal(direct[k], v) and direct[k].dtype == v.dtype
               for k, v in jit_state.items())
    assert direct["text_projection"].dtype == torch.float16
    official.float()  # clip.load(device="cpu") computes in fp32 on the fp16 values
    with torch.no_grad():
        assert torch.equal(load_clip_text_tower(path)(ids, trim=False),
                           official.encode_text(ids))


def test_bad_files(tmp_path, monkeypatch):
    missing = tmp_path / "ViT-B-32.pt"
    with pytest.raises(ConfigError, match=r"ViT-B-32\.pt.*HMU_CLIP_WEIGHTS"):
        load_clip_text_tower(missing)
    monkeypatch.setenv(CLIP_WEIGHTS_ENV, str(missing))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="not found") as info:
        CLIPTextEncoder.from_file()
    assert str(missing) in str(info.value) and ".cache/clip/ViT-B-32.pt" in str(info.value)
    other = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(2)}, other)
    with pytest.raises(ConfigError, match="no CLIP text-tower weights"):
        read_clip_weights(other)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"token_embedding.weight": torch.zeros(2), "opt": CLIPTextConfig()}, unsafe)
    with pytest.raises(ConfigError, match="cannot read CLIP weights"):
        read_clip_weights(unsafe)
    with pytest.raises(ConfigError, match=r"key 'ln_final\.weight' is missing"):
        config_from_state_dict({"token_embedding.weight": torch.zeros(2)})


def test_encoder_interface(tower, tok):
    enc = CLIPTextEncoder(tower, tok, batch_size=2)
    assert isinstance(enc, TextEncoder) and enc.dim == SMALL.embed_dim
    feats = enc.encode(TEXTS)
    assert feats.shape == (4, SMALL.embed_dim) and feats.dtype == torch.float32
    with torch.no_grad():
        direct = tower(torch.from_numpy(tok.tokenize(TEXTS)), trim=False)
    assert (feats - direct).abs().max() < 1e-5
    assert enc.encode([]).shape == (0, SMALL.embed_dim)
    with pytest.raises(ConfigError, match="precision"):
        CLIPTextEncoder(tower, tok, precision="bf16")


def test_fp16_like_official(tower, tok):
    half = CLIPTextTower(SMALL)
    half.load_state_dict(tower.state_dict())
    enc = CLIPTextEncoder(half, tok, precision="fp16")
    assert not enc.trim and half.transformer.resblocks[0].attn.in_proj_weight.dtype == torch.float16
    assert half.ln_final.weight.dtype == torch.float32  # LayerNorms stay fp32, as upstream
    feats = enc.encode(TEXTS[:2])
    with torch.no_grad():
        ref = tower(torch.from_numpy(tok.tokenize(TEXTS[:2])))
    assert feats.dtype == torch.float32 and (feats - ref).abs().max() < 2e-2


@pytest.mark.slow
def test_released_size_tower(tok):
    torch.manual_seed(0)
    t = CLIPTextTower().eval()
    assert sum(p.numel() for p in t.parameters()) == 63_428_096  # ViT-B/32 text tower
    assert config_from_state_dict(t.state_dict()) == CLIPTextConfig()
    ids = torch.from_numpy(tok.tokenize(TEXTS[:3]))
    with torch.no_grad():
        assert (t(ids, trim=True) - t(ids, trim=False)).abs().max() < 1e-5
