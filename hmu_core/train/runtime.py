"""Where a training run executes: device, torchrun/DDP process group, seeds, bf16 and compile.

Multi-GPU uses torch's own DDP under ``torchrun``: ``init_runtime`` reads ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``) from the environment and
joins the process group with ``nccl`` on CUDA or ``gloo`` on the CPU (how the tests run two
processes). Only rank 0 writes files. bf16 autocast and ``torch.compile`` are CUDA-only
options; on the CPU they stay off so runs are exactly reproducible.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from hmu_core.errors import ConfigError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Runtime:
    """Device and process-group facts of this process.

    Attributes:
        device: where models and batches live.
        rank, world_size, local_rank: torchrun's values (0, 1, 0 without torchrun).
        amp: bf16 autocast on (CUDA only).
        compile: ``nn.Module.compile`` on the heavy submodules (CUDA only); compiling in place
            keeps the state-dict keys official (no ``_orig_mod.`` prefix).
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    amp: bool = False
    compile: bool = False

    @property
    def is_main(self) -> bool:
        """True on the process that writes checkpoints and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when ``amp``; a no-op otherwise."""
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer; "
                          "launch with torchrun or unset it") from None


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU raises ConfigError."""
    if preference not in DEVICES:
        raise ConfigError(f"device {preference!r} unknown; use one of {', '.join(DEVICES)}")
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda asked for, but torch sees no CUDA device; use "
                              "--device cpu (or auto)")
        return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    return torch.device("cpu")


def init_runtime(device: str = "auto", amp: bool | None = None,
                 compile_model: bool | None = None) -> Runtime:
    """Set up this process: device, the DDP process group under torchrun, precision flags.

    Args:
        device: ``auto | cpu | cuda``.
        amp, compile_model: ``None`` = on with CUDA, off on the CPU; ``True`` on the CPU is
            refused (the CPU path is the exactly reproducible reference).

    Raises:
        ConfigError: unknown device, CUDA asked for but absent, amp/compile on the CPU, or a
            malformed torchrun environment.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"RANK={rank} WORLD_SIZE={world_size} is not a valid torchrun setup")
    dev = resolve_device(device, local_rank)
    cuda = dev.type == "cuda"
    for name, flag in (("bf16 autocast", amp), ("torch.compile", compile_model)):
        if flag and not cuda:
            raise ConfigError(f"{name} is a CUDA-only option; drop it or use --device cuda")
    if cuda:
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        log.info("joined DDP group: rank %d of %d (%s)", rank, world_size, backend)
    return Runtime(device=dev, rank=rank, world_size=world_size, local_rank=local_rank,
                   amp=cuda if amp is None else amp,
                   compile=cuda if compile_model is None else compile_model)


def shutdown_runtime(runtime: Runtime) -> None:
    """Leave the process group if this module joined one."""
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def stream_seed(seed: int, rank: int) -> int:
    """Seed of the training RNG stream of ``rank``: ranks draw different masks and dropout,
    and rank 0 of any world size draws the same as a single process."""
    return int(seed) * 1009 + 7919 * int(rank) + 1


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block (model construction) from ``torch.manual_seed(seed)``; every rank builds
    the same initial weights, as DDP expects."""
    torch.manual_seed(seed)
    yield


def gather_rng_states(runtime: Runtime) -> list[torch.Tensor]:
    """The torch RNG state of every rank (CPU and, on CUDA, the device generator)."""
    mine = [torch.get_rng_state()]
    if runtime.device.type == "cuda":
        mine.append(torch.cuda.get_rng_state(runtime.device))
    if not runtime.distributed:
        return mine
    gathered: list[Any] = [None] * runtime.world_size
    dist.all_gather_object(gathered, mine)
    return [item for per_rank in gathered for item in per_rank]


def restore_rng_states(states: list[torch.Tensor], runtime: Runtime) -> None:
    """Set this rank's RNG state from ``gather_rng_states`` output (warns and keeps the
    current seed when the world size or device changed)."""
    per_rank = 2 if runtime.device.type == "cuda" else 1
    if len(states) != per_rank * runtime.world_size:
        log.warning("checkpoint holds RNG states of %d streams, this run has %d; re-seeding, so "
                    "the continuation differs from an uninterrupted run", len(states),
                    per_rank * runtime.world_size)
        return
    mine = states[runtime.rank * per_rank:(runtime.rank + 1) * per_rank]
    torch.set_rng_state(mine[0].reshape(-1).to(torch.uint8))
    if per_rank == 2:
        torch.cuda.set_rng_state(mine[1], runtime.device)


def wrap_ddp(module: nn.Module, runtime: Runtime) -> nn.Module:
    """``DistributedDataParallel(module)`` when distributed, else ``module`` itself.

    Buffers are not broadcast: the positional encodings are constant and the VQ codebooks are
    synchronised explicitly (``vq.sync_codebooks``), because the quantiser replaces its buffer
    tensors, which DDP's cached buffer list would not see.
    """
    if not runtime.distributed:
        return module
    ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


def maybe_compile(modules: list[nn.Module], runtime: Runtime) -> None:
    """Compile ``modules`` in place when ``runtime.compile`` (keys stay official)."""
    if not runtime.compile:
        return
    for module in modules:
        module.compile()
