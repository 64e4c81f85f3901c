"""Shared fixtures of the trainer tests: a small synthetic set, a tiny VQ, a test encoder."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import torch

from hmu_core.synth.generate import write_synthetic_dataset
from hmu_core.train.loop import RunOptions
from hmu_core.train.presets import LengthPreset, Schedule, TransformerPreset, VQPreset


class HashEncoder:
    """Deterministic text encoder for tests: a fixed random vector per hashed word, averaged.

    Captions sharing words get similar vectors, so the condition carries real signal.
    """

    def __init__(self, dim: int = 512, buckets: int = 1024, seed: int = 0) -> None:
        self.name = f"test-hash-{dim}"
        self.dim = dim
        self.buckets = buckets
        self.table = torch.randn(buckets, dim, generator=torch.Generator().manual_seed(seed))
        self.calls = 0

    def encode(self, texts: list[str]) -> torch.Tensor:
        self.calls += 1
        rows = []
        for text in texts:
            words = re.findall(r"[a-z']+", text.lower()) or [""]
            ids = [int(hashlib.md5(w.encode()).hexdigest(), 16) % self.buckets for w in words]
            rows.append(self.table[ids].mean(0))
        return torch.stack(rows)


def tiny_schedule(**changes: object) -> Schedule:
    base = dict(batch_size=8, lr=2e-3, warm_up_iter=2, milestones=(6,), gamma=0.5,
                weight_decay=0.0, max_epoch=50, max_iters=6, save_latest=3, log_every=2,
                val_batches=1)
    base.update(changes)
    return Schedule(**base)  # type: ignore[arg-type]


def tiny_vq_preset(**changes: object) -> VQPreset:
    return VQPreset(schedule=tiny_schedule(**changes), nb_code=32, code_dim=16, width=24,
                    depth=1, num_quantizers=3, window_size=32)


def tiny_trans_preset(**changes: object) -> TransformerPreset:
    return TransformerPreset(schedule=tiny_schedule(**changes), latent_dim=32, ff_size=64,
                             num_layers=1, num_heads=2, dropout=0.1, max_motion_length=120)


def tiny_length_preset(**changes: object) -> LengthPreset:
    return LengthPreset(schedule=tiny_schedule(**changes), max_motion_length=120)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48-clip synthetic set (about a second to write)."""
    out = tmp_path_factory.mktemp("train_data") / "synth"
    write_synthetic_dataset(out, 48, seed=5, toxic_share=0.3)
    return out


@pytest.fixture(scope="session")
def vq_dir(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VQ trained for a few iterations (shared by the transformer tests)."""
    from hmu_core.train.runtime import init_runtime
    from hmu_core.train.vq import train_vq

    out = tmp_path_factory.mktemp("train_vq") / "vq"
    train_vq(synth_dir, tiny_vq_preset(max_iters=4), RunOptions(out_dir=out, seed=1),
             runtime=init_runtime("cpu"))
    return out


@pytest.fixture(scope="session")
def encoder() -> HashEncoder:
    return HashEncoder()
