"""Tiny MoMask and BAMM model sets (random weights) and their exported bundles.

Sampling parity does not need trained weights, only fixed ones. The text encoder is a tiny
random CLIP text tower (``CLIPTextEncoder``): a real, exportable encoder kind, so the bundle
path is the official-checkpoint one; MiniLM (real weights) is exported once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hmu_core.models import build
from hmu_core.models.checkpoints import save_model_dir
from hmu_core.models.model_set import write_model_set

CLIP_DIM, NB_CODE, CODE_DIM, Q = 8, 16, 8, 3
TRANS = dict(code_dim=CODE_DIM, cond_mode="text", latent_dim=16, ff_size=32, num_layers=2,
             num_heads=2, dropout=0.1, clip_dim=CLIP_DIM, cond_drop_prob=0.1,
             clip_version="ViT-B/32", num_tokens=NB_CODE)
UNLEARNING = {"method": "lcr", "concepts": ["kick"], "removed_codes": [3, 5], "seed": 0}


def tiny_clip_encoder(dim: int = CLIP_DIM):
    """A random one-layer CLIP text tower behind the real CLIP tokenizer."""
    from hmu_core.text.clip_text import CLIPTextConfig, CLIPTextEncoder, CLIPTextTower

    torch.manual_seed(1)
    tower = CLIPTextTower(CLIPTextConfig(embed_dim=dim, width=16, heads=2, layers=1))
    return CLIPTextEncoder(tower, name="tiny-clip")


def save_tiny_set(root: Path, kind: str = "mask_transformer", *, with_res: bool = True,
                  with_est: bool = True, clip_dim: int = CLIP_DIM,
                  unlearning: dict | None = None) -> Path:
    """A model set directory with random (fixed-seed) weights; returns ``root``."""
    torch.manual_seed(0)
    trans_cfg = {**TRANS, "clip_dim": clip_dim}
    vq = build("rvqvae", dict(
        num_quantizers=Q, shared_codebook=False, quantize_dropout_prob=0.2, mu=0.99,
        input_width=263, nb_code=NB_CODE, code_dim=CODE_DIM, output_emb_width=CODE_DIM,
        down_t=2, stride_t=2, width=16, depth=1, dilation_growth_rate=3, activation="relu",
        norm=None))
    for name, buf in vq.named_buffers():
        if name.endswith("codebook"):
            buf.copy_(torch.randn_like(buf))
    rng = np.random.default_rng(0)
    mean, std = rng.standard_normal(263) * 0.1, rng.uniform(0.5, 1.5, 263)
    save_model_dir(root / "vq", "rvqvae", vq, mean=mean, std=std)
    base = "bamm" if kind == "bamm_transformer" else "trans"
    trans = build(kind, trans_cfg)
    # Sharper logits than the N(0, 0.02) init, so sampled tokens depend on the inputs.
    with torch.no_grad():
        trans.output_process.poseFinal.weight.mul_(20)
    recorded = {"clip_dim": clip_dim, "text_encoder": "tiny-clip"}
    save_model_dir(root / base, kind, trans, opt_updates=recorded,
                   records={"unlearning.json": unlearning} if unlearning else None)
    parts = {"vq": "vq", "trans": base}
    if with_res:
        res = build("res_transformer", {**trans_cfg, "shared_codebook": False,
                                        "share_weight": True, "num_quantizers": Q})
        save_model_dir(root / "res", "res_transformer", res, opt_updates=recorded)
        parts["res"] = "res"
    if with_est:
        est = build("length_estimator", dict(input_size=clip_dim, output_size=50))
        save_model_dir(root / "length_estimator", "length_estimator", est)
        parts["length_estimator"] = "length_estimator"
    write_model_set(root, text_encoder="clip", **parts)
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: tiny models gain nothing from more, and on a shared 2-core box OpenMP
    spin-waiting makes torch several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def clip_encoder():
    return tiny_clip_encoder()


@pytest.fixture(scope="session")
def momask_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_set(tmp_path_factory.mktemp("momask") / "set", unlearning=UNLEARNING)


@pytest.fixture(scope="session")
def momask_bundle(momask_set: Path, clip_encoder, tmp_path_factory) -> Path:
    from exporter.export import export_bundle

    return export_bundle(momask_set, tmp_path_factory.mktemp("bundles") / "momask",
                         text_encoder=clip_encoder)


@pytest.fixture(scope="session")
def bamm_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_set(tmp_path_factory.mktemp("bamm") / "set", "bamm_transformer",
                         with_est=False)


@pytest.fixture(scope="session")
def bamm_bundle(bamm_set: Path, clip_encoder, tmp_path_factory) -> Path:
    from exporter.export import export_bundle

    return export_bundle(bamm_set, tmp_path_factory.mktemp("bundles") / "bamm",
                         text_encoder=clip_encoder)
