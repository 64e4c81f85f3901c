"""DDP: two gloo CPU processes train the VQ and a mask transformer; ranks end identical."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from hmu_core.models.checkpoints import read_checkpoint

from .conftest import HashEncoder, tiny_trans_preset, tiny_vq_preset

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(rank: int, world: int, port: int, data: str, out: str, vq_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from hmu_core.train.loop import RunOptions
    from hmu_core.train.runtime import init_runtime, shutdown_runtime
    from hmu_core.train.transformers import train_transformer
    from hmu_core.train.vq import train_vq

    runtime = init_runtime("cpu")
    try:
        vq_out = Path(out) / "vq"
        result = train_vq(data, tiny_vq_preset(max_iters=3), RunOptions(out_dir=vq_out, seed=4),
                          runtime=runtime)
        torch.save({"vq_model": result.model.state_dict()}, vq_out / f"rank{rank}.tar")
        result = train_transformer("mask", data, vq_dir, HashEncoder(), tiny_trans_preset(
            max_iters=3, batch_size=4), RunOptions(out_dir=Path(out) / "mask", seed=4),
            runtime=runtime)
        torch.save({"t2m_transformer": result.model.state_dict()},
                   Path(out) / "mask" / f"rank{rank}.tar")
    finally:
        shutdown_runtime(runtime)


def test_two_gloo_processes_train_and_agree(synth_dir: Path, vq_dir: Path, tmp_path: Path):
    port = _free_port()
    mp.spawn(_worker, args=(2, port, str(synth_dir), str(tmp_path), str(vq_dir)), nprocs=2,
             join=True)
    for name, key in (("vq", "vq_model"), ("mask", "t2m_transformer")):
        ckpt = read_checkpoint(tmp_path / name / "model" / "latest.tar")
        assert ckpt["total_it"] == 3
        assert len(ckpt["hmu_rng"]) == 2  # one RNG state per rank
        per_rank = [read_checkpoint(tmp_path / name / f"rank{r}.tar")[key] for r in (0, 1)]
        for param, value in per_rank[0].items():
            assert torch.equal(value, per_rank[1][param]), (name, param)
