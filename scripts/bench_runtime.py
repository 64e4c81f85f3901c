"""Benchmark: per-clip latency of the onnxruntime bundle runtime against torch eager, on CPU.

    .venv/bin/python scripts/bench_runtime.py [--threads 2] [--repeats 3] [--skip-official]

Two random-weight MoMask model sets (VQ + mask transformer + residual transformer, a CLIP text
tower) are saved, exported with ``export_bundle`` and run both ways with the same seed:

- ``small`` (latent 128, 2 layers, 128 codes x 3 layers, 1-layer CLIP tower): 4 s clips at
  batch 1 and 32;
- ``official`` (momask.md §1.1/§2.1: VQ 512 codes x 6 layers, width 512; transformers latent
  384, ff 1024, 8 layers, 6 heads; CLIP ViT-B/32 text tower): one 196-frame clip.

Baseline: torch eager ``hmu_core.models.generate.generate_motions`` on CPU in the same run,
same threads. Prints per-clip latency (min over repeats, after one warm-up) and the ratio
torch / runtime (> 1: the runtime is faster), and checks that both give the same tokens.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from exporter.export import export_bundle
from exporter.runtime import Generator
from hmu_core.models import build, save_model_dir
from hmu_core.models import generate as G
from hmu_core.text.clip_text import CLIPTextConfig, CLIPTextEncoder, CLIPTextTower

CONFIGS = {
    "small": dict(nb_code=128, code_dim=128, width=128, depth=2, q=3, latent=128, ff=256,
                  layers=2, heads=4, clip=CLIPTextConfig(embed_dim=128, width=64, heads=2,
                                                         layers=1)),
    "official": dict(nb_code=512, code_dim=512, width=512, depth=3, q=6, latent=384, ff=1024,
                     layers=8, heads=6, clip=CLIPTextConfig()),
}


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


def best_of(fn, repeats: int) -> tuple[float, object]:
    """One warm-up call, then the minimum wall time of ``repeats`` calls."""
    out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def bench(name: str, work: Path, batches: list[int], seconds: float, threads: int,
          repeats: int) -> list[tuple]:
    model_set, encoder = save_random_set(work / name, CONFIGS[name])
    start = time.perf_counter()
    bundle = export_bundle(model_set, work / f"{name}.bundle", text_encoder=encoder)
    print(f"[{name}] exported in {time.perf_counter() - start:.1f} s", flush=True)
    torch_gen = G.load_generator(G.resolve_model_set(model_set), text_encoder=encoder)
    runtime = Generator(bundle, device="cpu", threads=threads)
    rows = []
    for batch in batches:
        prompts = [f"a person walks forward and waves, take {i}" for i in range(batch)]
        t_torch, a = best_of(lambda p=prompts: G.generate_motions(
            torch_gen, p, seconds=seconds, seed=0), repeats)
        t_ort, b = best_of(lambda p=prompts: runtime.generate(p, seconds=seconds, seed=0),
                           repeats)
        same = all(np.array_equal(x, y) for x, y in zip(a.tokens, b.tokens, strict=True))
        rows.append((name, batch, round(seconds * 20), 1e3 * t_torch / batch,
                     1e3 * t_ort / batch, t_torch / t_ort, same))
        print(f"[{name}] batch {batch}: torch {t_torch:.2f} s, runtime {t_ort:.2f} s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads, both sides (2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after a warm-up (3)")
    parser.add_argument("--skip-official", action="store_true",
                        help="only the small configuration")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="hmu-bench-") as tmp:
        rows = bench("small", Path(tmp), [1, 32], 4.0, args.threads, args.repeats)
        if not args.skip_official:
            rows += bench("official", Path(tmp), [1], 9.8, args.threads, args.repeats)
    print(f"\nper-clip latency on CPU, {args.threads} threads, min of {args.repeats} "
          f"(baseline: torch eager generate_motions)")
    print(f"{'config':<9} {'batch':>5} {'frames':>6} {'torch ms':>9} {'runtime ms':>10} "
          f"{'torch/runtime':>13} {'same tokens':>11}")
    for name, batch, frames, t_torch, t_ort, ratio, same in rows:
        print(f"{name:<9} {batch:>5} {frames:>6} {t_torch:>9.1f} {t_ort:>10.1f} {ratio:>13.2f} "
              f"{same!s:>11}")


if __name__ == "__main__":
    main()
