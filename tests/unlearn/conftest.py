"""Micro MoMask and BAMM model sets on disk (random weights, MiniLM-width text) and a small
synthetic dataset with many toxic clips: every unlearning method runs end to end on them in
seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hmu_core.data.datasets import meta_stats
from hmu_core.models import build
from hmu_core.models.checkpoints import save_model_dir
from hmu_core.models.model_set import write_model_set
from hmu_core.synth.generate import write_synthetic_dataset

CLIP_DIM, NB_CODE, CODE_DIM, Q = 384, 32, 16, 3  # 384: the MiniLM text encoder's width
_TRANS = dict(code_dim=CODE_DIM, cond_mode="text", latent_dim=16, ff_size=32, num_layers=1,
              num_heads=2, dropout=0.1, clip_dim=CLIP_DIM, cond_drop_prob=0.1,
              clip_version="ViT-B/32", num_tokens=NB_CODE)


@pytest.fixture(scope="session")
def unlearn_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 synthetic clips, 40 % toxic (kicks, punches, weapons...)."""
    out = tmp_path_factory.mktemp("unlearn_data") / "synth"
    write_synthetic_dataset(out, 120, seed=7, toxic_share=0.4)
    return out


def write_micro_set(root: Path, data: Path, base: str = "mask_transformer") -> Path:
    """A model set with random weights: vq/ (random codebooks, the dataset's meta stats),
    trans/ or bamm/, res/, length_estimator/, hmu.json (text encoder minilm)."""
    torch.manual_seed(0)
    vq = build("rvqvae", dict(
        num_quantizers=Q, shared_codebook=False, quantize_dropout_prob=0.2, mu=0.99,
        input_width=263, nb_code=NB_CODE, code_dim=CODE_DIM, output_emb_width=CODE_DIM,
        down_t=2, stride_t=2, width=16, depth=1, dilation_growth_rate=3, activation="relu",
        norm=None))
    mean, std = meta_stats(np.load(data / "Mean.npy"), np.load(data / "Std.npy"))
    # Codebooks drawn from real encoder outputs (as the quantiser's own initialisation), so
    # the dataset's motions use many codes, like a trained VQ's.
    clips = sorted((data / "new_joint_vecs").glob("*.npy"))[:12]
    x = torch.cat([torch.from_numpy((np.load(c)[:64] - mean) / std).float() for c in clips])
    with torch.no_grad():
        latents = vq.encoder(vq.preprocess(x[None])).permute(0, 2, 1).reshape(-1, CODE_DIM)
        pick = torch.randperm(latents.shape[0], generator=torch.Generator().manual_seed(0))
        for q, layer in enumerate(vq.quantizer.layers):
            rows = latents[pick[:NB_CODE]] if q == 0 else 0.1 * torch.randn(NB_CODE, CODE_DIM)
            layer.codebook.copy_(rows)
    base_dir = "bamm" if base == "bamm_transformer" else "trans"
    save_model_dir(root / "vq", "rvqvae", vq, mean=mean, std=std)
    opt = {"vq_name": "vq", "clip_dim": CLIP_DIM}
    save_model_dir(root / base_dir, base, build(base, _TRANS), opt_updates=opt)
    save_model_dir(root / "res", "res_transformer",
                   build("res_transformer", {**_TRANS, "shared_codebook": False,
                                             "share_weight": True, "num_quantizers": Q}),
                   opt_updates=opt)
    save_model_dir(root / "length_estimator", "length_estimator",
                   build("length_estimator", dict(input_size=CLIP_DIM, output_size=50)))
    write_model_set(root, text_encoder="minilm", vq="vq", trans=base_dir, res="res",
                    length_estimator="length_estimator")
    return root


@pytest.fixture(scope="session")
def momask_set(tmp_path_factory: pytest.TempPathFactory, unlearn_data: Path) -> Path:
    return write_micro_set(tmp_path_factory.mktemp("sets") / "momask", unlearn_data)


@pytest.fixture(scope="session")
def bamm_set(tmp_path_factory: pytest.TempPathFactory, unlearn_data: Path) -> Path:
    return write_micro_set(tmp_path_factory.mktemp("sets") / "bamm", unlearn_data,
                           base="bamm_transformer")
