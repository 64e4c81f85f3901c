"""Benchmark: training-step throughput of bf16 autocast + torch.compile against plain fp32.

    .venv/bin/python scripts/bench_train_precision.py [--preset humanml3d] [--steps 30]

Times the RVQ-VAE step (``hmu_core.train.vq.VQStep`` + the official loss) and the MoMask
mask-transformer step at the preset's widths and batch sizes on random inputs, the same code
path ``hmu train`` runs. Baseline: plain fp32, no compile, on the same GPU in the same run.
Prints steps/s of both and the ratio (bf16+compile / fp32). Needs CUDA; without it, it says so
and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch


def _vq_step(preset, runtime):
    from hmu_core.models import build
    from hmu_core.models.rvq.model import RVQVAEConfig
    from hmu_core.train.loop import adamw
    from hmu_core.train.vq import VQStep

    torch.manual_seed(0)
    vq = build("rvqvae", RVQVAEConfig(**preset.model_config(263))).to(runtime.device)
    runtime_mod = VQStep(vq, runtime)
    if runtime.compile:
        vq.encoder.compile()
        vq.decoder.compile()
    opt = adamw(vq, preset.schedule)
    x = torch.randn(preset.schedule.batch_size, preset.window_size, 263, device=runtime.device)

    def step() -> None:
        recon, commit, _ = runtime_mod(x)
        loss = torch.nn.functional.smooth_l1_loss(recon, x) + preset.commit * commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _mask_step(preset, runtime):
    from hmu_core.models import build
    from hmu_core.models.mask_transformer import MaskTransformerConfig
    from hmu_core.train.loop import adamw

    torch.manual_seed(0)
    config = MaskTransformerConfig(**preset.model_config("mask"), code_dim=512, num_tokens=512,
                                   clip_dim=512)
    model = build("mask_transformer", config).to(runtime.device)
    if runtime.compile:
        model.seqTransEncoder.compile()
    opt = adamw(model, preset.schedule)
    batch = preset.schedule.batch_size
    ids = torch.randint(0, 512, (batch, 49), device=runtime.device)
    cond = torch.randn(batch, 512, device=runtime.device)
    lens = torch.randint(10, 50, (batch,), device=runtime.device)

    def step() -> None:
        with runtime.autocast():
            loss, _, _ = model(ids, cond, lens)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _rate(make, preset, runtime, steps: int) -> float:
    step = make(preset, runtime)
    for _ in range(5):  # warm-up, includes compilation
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("tiny", "humanml3d"), default="humanml3d")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_train_precision: needs a CUDA device (bf16 autocast and torch.compile are "
              "CUDA-only in hmu train); nothing measured")
        return 0
    from hmu_core.train.presets import get_preset
    from hmu_core.train.runtime import init_runtime

    base = init_runtime("cuda", amp=False, compile_model=False)
    fast = dataclasses.replace(base, amp=True, compile=True)
    print(f"device: {torch.cuda.get_device_name(base.device)}, preset {args.preset}")
    for name, make in (("vq", _vq_step), ("mask", _mask_step)):
        preset = get_preset(name, args.preset)
        fp32 = _rate(make, preset, base, args.steps)
        bf16 = _rate(make, preset, fast, args.steps)
        print(f"{name:5s} fp32 {fp32:7.2f} steps/s | bf16+compile {bf16:7.2f} steps/s | "
              f"ratio {bf16 / fp32:.2f}x (baseline: plain fp32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
