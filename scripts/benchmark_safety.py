"""The safety table: forget toxicity, implicit attacks, retain accuracy and naturalness over
every forget caption line and 6 seeds (mean ± 95 % CI), for several model sets.

    python scripts/benchmark_safety.py --data runs/synth_small --concept violence_motionx \
        --models original=runs/set lcr=runs/unlearned/lcr suppress=runs/unlearned/suppress \
        --out runs/benchmark_safety

Each model's per-seed values are cached in OUT/<name>.json (keyed by the model set's
unlearning record and the protocol), so a rerun only measures new rows. Writes OUT/safety.md and
OUT/safety.csv. The judge is the synthetic set's ground-truth family classifier
(hmu_core/assets: the one the demo uses).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hmu_core.assets import default_classifier_path
from hmu_core.atomic import write_json, write_text
from hmu_core.errors import HmuError
from hmu_core.eval.benchmark import parse_models
from hmu_core.eval.classifier import MotionClassifier
from hmu_core.eval.metrics import mean_ci95
from hmu_core.eval.safety import (
    SafetyPrompts,
    SafetyProtocol,
    SafetyResult,
    measure_safety,
    torch_generate,
)
from hmu_core.eval.toxicity import fit_family_judge
from hmu_core.models.generate import load_generator
from hmu_core.models.model_set import RECORD_FILE, resolve_model_set

COLUMNS = (("forget_toxicity", "forget → toxic ↓", 100, "%"),
           ("implicit_toxicity", "implicit → toxic ↓", 100, "%"),
           ("retain_accuracy", "retain accuracy ↑", 100, "%"),
           ("forget_root_speed", "forget root speed (m/s)", 1, ""),
           ("forget_leaves_2m", "forget outputs leaving 2 m", 100, "%"),
           ("forget_foot_skating", "forget foot skating (m/s)", 1, ""),
           ("forget_jerk", "forget jerk (m/s³)", 1, ""))


def _fingerprint(model: Path, protocol: SafetyProtocol, prompts: SafetyPrompts) -> str:
    digest = hashlib.sha256()
    record = model / RECORD_FILE
    digest.update(record.read_bytes() if record.is_file() else str(model.resolve()).encode())
    digest.update(json.dumps({"seeds": protocol.seeds, "forget": len(prompts.forget),
                              "retain": len(prompts.retain),
                              "implicit": len(prompts.implicit)}).encode())
    return digest.hexdigest()


def _cell(summary: dict[str, dict[str, float]], key: str, scale: float, unit: str) -> str:
    s = summary[key]
    digits = 1 if scale == 100 else 2
    return f"{s['mean'] * scale:.{digits}f} ± {s['ci95'] * scale:.{digits}f}{unit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--concept", nargs="+", default=["violence_motionx"])
    parser.add_argument("--models", nargs="+", required=True, metavar="NAME=DIR")
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--retain-clips", type=int, default=192,
                        help="retain test clips judged (first caption line each; default 192)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny models: one thread each beats two fighting on 2 cores
    try:
        models = parse_models(args.models)
        protocol = SafetyProtocol(seeds=tuple(range(args.seeds)))
        prompts = SafetyPrompts.from_dataset(args.data, args.concept,
                                             retain_limit=args.retain_clips)
        judge = fit_family_judge(args.data,
                                 classifier=MotionClassifier.load(default_classifier_path()))
        if judge is None:
            raise HmuError(f"{args.data} is not a synthetic set (no clips.jsonl): the safety "
                           f"table needs its ground-truth families")
        summaries, per_seed = {}, {}
        for name, model in models:
            cache = args.out / f"{name}.json"
            key = _fingerprint(model, protocol, prompts)
            if cache.is_file() and json.loads(cache.read_text())["key"] == key:
                cached = json.loads(cache.read_text())
                summaries[name], per_seed[name] = cached["summary"], cached["per_seed"]
                continue
            print(f"{name}: measuring {model}", flush=True)
            started = time.perf_counter()
            result: SafetyResult = measure_safety(
                torch_generate(load_generator(resolve_model_set(model))), judge, prompts,
                protocol,
                step=lambda line, n=name: print(f"  {n} {line}", flush=True))
            summaries[name], per_seed[name] = result.summary(), result.per_seed
            write_json(cache, {"key": key, "model": str(model), "per_seed": result.per_seed,
                               "summary": summaries[name],
                               "wall_s": round(time.perf_counter() - started, 1)})
    except HmuError as error:
        print(f"benchmark_safety: error: {error}", file=sys.stderr)
        return 2
    if "original" in per_seed:  # paired by seed and prompt: the edit's own effect
        for name, values in per_seed.items():
            if name != "original":
                delta = np.subtract(values["retain_accuracy"],
                                    per_seed["original"]["retain_accuracy"])
                mean, ci = mean_ci95(delta)
                summaries[name]["retain_delta"] = {"mean": float(mean), "ci95": float(ci)}
        summaries["original"]["retain_delta"] = {"mean": 0.0, "ci95": 0.0}
    columns = COLUMNS + ((("retain_delta", "retain Δ vs original (paired)", 100, " pt"),)
                         if "original" in per_seed else ())
    head = ["model", *(label for _, label, _, _ in columns)]
    lines = [f"Synthetic `{args.data.name}`, concept {', '.join(args.concept)}: "
             f"{len(prompts.forget)} forget caption lines (every line of the forget test clips),"
             f" {len(prompts.implicit)} implicit prompts, the first {len(prompts.retain)} retain "
             f"test clips (first line each); {len(protocol.seeds)} seeds, mean ± 95 % CI over "
             f"seeds (1.96 σ/√n). Judge: the ground-truth family classifier.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, summary in summaries.items():
        lines.append("| " + " | ".join([name, *(_cell(summary, k, s, u)
                                              for k, _, s, u in columns)]) + " |")
    if "original" in summaries:
        ref = summaries["original"]
        lines += ["", "Reference for naturalness, the original model's retain outputs: root "
                  f"speed {_cell(ref, 'retain_root_speed', 1, ' m/s')}, leaving 2 m "
                  f"{_cell(ref, 'retain_leaves_2m', 100, '%')}, foot skating "
                  f"{_cell(ref, 'retain_foot_skating', 1, ' m/s')}, jerk "
                  f"{_cell(ref, 'retain_jerk', 1, ' m/s³')}."]
    write_text(args.out / "safety.md", "\n".join(lines) + "\n")
    csv = [",".join(["model", *(f"{k}_{s}" for k, _, _, _ in columns
                                for s in ("mean", "ci95"))])]
    for name, summary in summaries.items():
        csv.append(",".join([name, *(f"{summary[k][s]:.6g}" for k, _, _, _ in columns
                                     for s in ("mean", "ci95"))]))
    write_text(args.out / "safety.csv", "\n".join(csv) + "\n")
    print(f"wrote {args.out / 'safety.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
