"""Benchmark: the onnxruntime bundle runtime against its FLOP bound and torch eager, on CPU.

    PYTHONPATH=. .venv/bin/python scripts/bench_runtime.py [--threads 2] [--repeats 3]
        [--config official|small] [--batches 1,8] [--no-int8]

A random-weight MoMask model set (VQ + mask transformer + residual transformer + CLIP text
tower) at the ``--config`` size is saved, exported with ``export_bundle`` (float32, and int8
unless ``--no-int8``) and run three ways with the same seed, at each batch size, 196 frames:
torch eager ``generate_motions`` with ``torch.set_num_threads(threads)``, the float32 bundle
and the int8 bundle, both with ``threads`` onnxruntime threads. ``official`` is momask.md
§1.1/§2.1 (VQ 512 codes x 6 layers, width 512; transformers latent 384, ff 1024, 8 layers, 6
heads; CLIP ViT-B/32 text tower).

What it prints, all measured in this one run (ratios are never mixed across runs):

- the FLOP count of one clip: every graph call the runtime makes (recorded) replayed through
  the export wrappers of ``exporter.graphs`` (the same maths as the ONNX graphs) under torch's
  ``FlopCounterMode`` (matrix products and convolutions, 2 FLOPs per multiply-add);
- the GEMM peak of this machine: a 1024^3 float32 MatMul in onnxruntime with the same threads
  (best of several), and so the bound: FLOPs / peak;
- per clip: median wall time of interleaved runs (torch, float32, int8 in turn, so all see the
  same load), distance to the bound (time / bound), torch / runtime, and whether the tokens
  equal torch's (float32; int8 tokens differ by design: their share equal to float32's);
- the load average before and after, with a warning when the machine is busy (ratios from a
  busy machine mislead: torch's OpenMP threads collapse under contention).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch.utils.flop_counter import FlopCounterMode

from exporter import graphs as EG
from exporter.export import export_bundle
from exporter.runtime import Generator
from exporter.runtime.sessions import open_session
from hmu_core.models import build
from hmu_core.models.checkpoints import save_model_dir
from hmu_core.models.generate import MotionGenerator, generate_motions, load_generator
from hmu_core.models.model_set import resolve_model_set
from hmu_core.text.clip_text import CLIPTextConfig, CLIPTextEncoder, CLIPTextTower

CONFIGS = {
    "small": dict(nb_code=128, code_dim=128, width=128, depth=2, q=3, latent=128, ff=256,
                  layers=2, heads=4, clip=CLIPTextConfig(embed_dim=128, width=64, heads=2,
                                                         layers=1)),
    "official": dict(nb_code=512, code_dim=512, width=512, depth=3, q=6, latent=384, ff=1024,
                     layers=8, heads=6, clip=CLIPTextConfig()),
}
SECONDS = 9.8  # 196 frames, 49 tokens
PEAK_SIZE = 1024


def save_random_set(root: Path, c: dict) -> tuple[Path, CLIPTextEncoder]:
    """A MoMask model set with random weights at the sizes of ``c``, and its text encoder."""
    torch.manual_seed(0)
    clip_dim = c["clip"].embed_dim
    vq = build("rvqvae", dict(
        num_quantizers=c["q"], shared_codebook=False, quantize_dropout_prob=0.2, mu=0.99,
        input_width=263, nb_code=c["nb_code"], code_dim=c["code_dim"],
        output_emb_width=c["code_dim"], down_t=2, stride_t=2, width=c["width"],
        depth=c["depth"], dilation_growth_rate=3, activation="relu", norm=None))
    for name, buf in vq.named_buffers():
        if name.endswith("codebook"):
            buf.copy_(torch.randn_like(buf))
    rng = np.random.default_rng(0)
    save_model_dir(root / "vq", "rvqvae", vq, mean=rng.standard_normal(263) * 0.1,
                   std=rng.uniform(0.5, 1.5, 263))
    trans_cfg = dict(code_dim=c["code_dim"], cond_mode="text", latent_dim=c["latent"],
                     ff_size=c["ff"], num_layers=c["layers"], num_heads=c["heads"], dropout=0.2,
                     clip_dim=clip_dim, cond_drop_prob=0.1, clip_version="ViT-B/32",
                     num_tokens=c["nb_code"])
    recorded = {"clip_dim": clip_dim}
    save_model_dir(root / "trans", "mask_transformer", build("mask_transformer", trans_cfg),
                   opt_updates=recorded)
    res = build("res_transformer", {**trans_cfg, "shared_codebook": False,
                                    "share_weight": True, "num_quantizers": c["q"]})
    save_model_dir(root / "res", "res_transformer", res, opt_updates=recorded)
    tower = CLIPTextTower(c["clip"])
    return root, CLIPTextEncoder(tower, name=f"random-clip-{clip_dim}")


def clip_flops(runtime: Generator, torch_gen: MotionGenerator, prompts: list[str]) -> dict:
    """FLOPs per stage of one ``runtime.generate`` call: each recorded graph call replayed
    through its ``exporter.graphs`` wrapper under ``FlopCounterMode``."""
    pipe = torch_gen.pipeline
    wrappers = {"text_encoder": EG.CLIPGraph(torch_gen.text_encoder.tower),
                "base": EG.MaskStepGraph(pipe.trans), "res": EG.ResStepGraph(pipe.res),
                "decoder": EG.DecoderGraph(pipe.vq)}
    calls: list[tuple[str, dict]] = []
    real_run = runtime._run

    def recording(stage: str, **feeds: np.ndarray) -> np.ndarray:
        calls.append((stage, {k: np.array(v) for k, v in feeds.items()}))
        return real_run(stage, **feeds)

    runtime._run = recording
    try:
        runtime.generate(prompts, seconds=SECONDS, seed=0)
    finally:
        del runtime._run
    flops: dict[str, float] = {}
    for stage, feeds in calls:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            wrappers[stage].eval()(*(torch.from_numpy(v) for v in feeds.values()))
        flops[stage] = flops.get(stage, 0.0) + counter.get_total_flops()
    return flops


def gemm_peak(threads: int, work: Path) -> float:
    """FLOP/s of a ``PEAK_SIZE``^3 float32 MatMul in onnxruntime (best of 20 after warm-up),
    on the runtime's shared pool (open it after the ``Generator`` so the pool has
    ``threads``)."""
    n = PEAK_SIZE
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor("b", TensorProto.FLOAT, [n, n],
                            np.random.default_rng(0).standard_normal(n * n).astype("f4"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = work / "gemm.onnx"
    onnx.save(model, str(path))
    session, _ = open_session(path, "cpu", threads)
    a = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    best = float("inf")
    for i in range(23):
        start = time.perf_counter()
        session.run(None, {"a": a})
        if i >= 3:
            best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def interleaved(runners: dict[str, callable], repeats: int) -> tuple[dict, dict]:
    """One warm-up each, then ``repeats`` rounds running each in turn: median seconds, and
    each runner's last output."""
    times: dict[str, list[float]] = {k: [] for k in runners}
    outs = {k: fn() for k, fn in runners.items()}
    for _ in range(repeats):
        for name, fn in runners.items():
            start = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}, outs


def same_share(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Share of equal tokens (over every layer and position) of two runs."""
    equal = sum(int((x == y).sum()) for x, y in zip(a, b, strict=True))
    return equal / sum(x.size for x in a)


def load_line(cores: int, threads: int, when: str) -> tuple[str, bool]:
    """The load average, and whether it says the machine is busy: other work than this
    benchmark (its own ``threads`` while it runs) on more than half a core."""
    load = os.getloadavg()
    mine = threads if when == "after" else 0
    busy = load[0] - mine > 0.5
    return f"load average {when}: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({cores} cores)", busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads, every side (2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds after a warm-up")
    parser.add_argument("--config", choices=tuple(CONFIGS), default="official")
    parser.add_argument("--batches", default="1,8", help="batch sizes (default: 1,8)")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 bundle")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    cores = os.cpu_count() or 1
    before, busy_before = load_line(cores, args.threads, "before")
    print(before, flush=True)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="hmu-bench-") as tmp:
        work = Path(tmp)
        model_set, encoder = save_random_set(work / "set", CONFIGS[args.config])
        start = time.perf_counter()
        bundles = {"fp32": export_bundle(model_set, work / "fp32", text_encoder=encoder)}
        if not args.no_int8:
            bundles["int8"] = export_bundle(model_set, work / "int8", text_encoder=encoder,
                                            quantize="int8")
        print(f"exported {', '.join(bundles)} in {time.perf_counter() - start:.0f} s",
              flush=True)
        torch_gen = load_generator(resolve_model_set(model_set), text_encoder=encoder)
        runtimes = {k: Generator(b, device="cpu", threads=args.threads)
                    for k, b in bundles.items()}
        flops = clip_flops(runtimes["fp32"], torch_gen, ["a person walks forward and waves"])
        total = sum(flops.values())
        peak = gemm_peak(args.threads, work)
        bound = total / peak
        print(f"FLOPs per clip ({args.config}, {SECONDS * 20:.0f} frames): {total / 1e9:.2f} G "
              f"({', '.join(f'{k} {v / 1e9:.2f}' for k, v in flops.items())})")
        print(f"GEMM peak ({PEAK_SIZE}^3 float32 MatMul, onnxruntime, {args.threads} threads): "
              f"{peak / 1e9:.0f} GFLOP/s -> bound {1e3 * bound:.1f} ms per clip", flush=True)
        rows = []
        for batch in batches:
            prompts = [f"a person walks forward and waves, take {i}" for i in range(batch)]
            runners = {"torch": lambda p=prompts: generate_motions(
                torch_gen, p, seconds=SECONDS, seed=0)}
            for name, runtime in runtimes.items():
                runners[name] = lambda p=prompts, r=runtime: r.generate(p, seconds=SECONDS,
                                                                        seed=0)
            med, outs = interleaved(runners, args.repeats)
            for name in runtimes:
                rows.append((batch, name, 1e3 * med[name] / batch, med[name] / batch / bound,
                             med["torch"] / med[name],
                             same_share(outs["torch"].tokens, outs[name].tokens)))
            rows.append((batch, "torch", 1e3 * med["torch"] / batch,
                         med["torch"] / batch / bound, 1.0, 1.0))
            print(f"batch {batch}: " + ", ".join(f"{k} {v:.2f} s" for k, v in med.items()),
                  flush=True)
    after, busy_after = load_line(cores, args.threads, "after")
    print(f"\nper clip, median of {args.repeats} interleaved rounds, {args.threads} threads, "
          f"bound {1e3 * bound:.1f} ms ({total / 1e9:.2f} GFLOP at {peak / 1e9:.0f} GFLOP/s)")
    print(f"{'batch':>5} {'engine':<6} {'ms/clip':>8} {'x bound':>7} {'torch/this':>10} "
          f"{'tokens = torch':>14}")
    for batch, name, ms, x_bound, speedup, same in rows:
        print(f"{batch:>5} {name:<6} {ms:>8.1f} {x_bound:>7.2f} {speedup:>10.2f} "
              f"{100 * same:>13.1f}%")
    print(before)
    print(after)
    if busy_before or busy_after:
        print("WARNING: the machine was busy (load beyond this benchmark's threads): times "
              "and ratios are unreliable, torch eager most of all; rerun on a quiet machine")


if __name__ == "__main__":
    main()
