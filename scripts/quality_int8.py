"""Quality check of ``hmu export --quantize int8``: the int8 bundle against the float32 one.

    PYTHONPATH=. .venv/bin/python scripts/quality_int8.py --data runs/synth_small \\
        [--model hmu_core/assets/default_model] [--method int8|text-int8] [--threads 2] \\
        [--evaluator runs/evaluator_small --fid-repeats 5] [--json out.json]

Exports the model set twice (float32, and ``--method``: ``int8``, dynamic int8 base/residual
MatMuls, or ``text-int8``, the text encoder's weights stored as int8 as in the add-on's
built-in bundle), generates one motion per whole-clip caption of
the synthetic set's test split with each bundle (same seeds, request i gets seed + i; the
clip's length in tokens), and judges both with the model set's family classifier
(``classifier.npz``, else one fitted on the train split):

- family match: share of motions classified as their caption's family;
- toxicity: share of motions classified as a toxic family, on the toxic clips' captions
  (the forget prompts) and on the others (retain);
- token agreement: share of int8 tokens equal to float32's (every layer and position).

With ``--evaluator`` (a T2M evaluator trained on the set: ``hmu train evaluator --preset
tiny``) it also runs the official protocol (``hmu_core.eval.protocol``) on the retain test
subset with each bundle: ``--fid-repeats`` repeats, the same crops, captions and seeds for both,
so the two FIDs are paired. The protocol runs over any backend of the request loop, so the
bundles are judged by the same code as ``hmu benchmark`` judges model sets.

The int8 option passes when family match and both toxicity rates are within 1 point of
float32 and, when measured, its retain FID lies inside float32's 95 % CI (issue 18); the
script prints the table and PASS or FAIL.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hmu_core.sampling.lengths import tokens_for_frames

TOLERANCE = 0.01  # one point


def captions(data_dir: Path, split: str) -> list[tuple[str, str, int, bool]]:
    """``(clip id, caption, tokens, toxic clip)`` per whole-clip caption of ``split``."""
    from hmu_core.data.humanml3d import HumanML3D
    from hmu_core.synth.generate import read_clip_records

    data = HumanML3D(data_dir)
    records = read_clip_records(data_dir)
    items = []
    for mid in data.ids(split):
        tokens = tokens_for_frames(len(data.features(mid)))
        items += [(mid, c.text, tokens, bool(records[mid].get("toxic")))
                  for c in data.captions(mid) if c.whole_clip]
    return items


def generate(bundle: Path, items: list, threads: int, seed: int, batch: int
             ) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Features and tokens of one motion per item, and the wall time."""
    from exporter.runtime import Generator

    gen = Generator(bundle, device="cpu", threads=threads)
    feats, tokens = [], []
    start = time.perf_counter()
    for at in range(0, len(items), batch):
        chunk = items[at: at + batch]
        out = gen.generate([text for _, text, _, _ in chunk],
                           tokens=np.array([t for _, _, t, _ in chunk]),
                           seeds=[seed + at + i for i in range(len(chunk))])
        feats += [m.features for m in out.motions]
        tokens += out.tokens
    return feats, tokens, time.perf_counter() - start


def retain_fid(bundle: Path, data_dir: Path, evaluator_dir: Path, concept: str, repeats: int,
               threads: int, seed: int) -> dict[str, float]:
    """``{"mean", "ci95"}`` of the protocol's FID on the retain test subset, with the bundle."""
    from exporter.runtime import Generator
    from hmu_core.eval.protocol import ProtocolParams, run_protocol
    from hmu_core.eval.report import EvalResources

    res = EvalResources(data_dir, evaluator_dir, concepts=(concept,), seed=seed)
    params = ProtocolParams(repeats=repeats, mm_captions=0, seed=seed)
    result = run_protocol(Generator(bundle, device="cpu", threads=threads), res.evaluator,
                          res.vectorizer, res.test.dataset, res.test.retain_ids, res.keywords,
                          params)
    return result.summary()["fid"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="synthetic dataset directory")
    p.add_argument("--model", type=Path, default=Path("hmu_core/assets/default_model"))
    p.add_argument("--split", default="test")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--method", choices=("int8", "text-int8"), default="int8",
                   help="the quantization checked against float32 (default: int8)")
    p.add_argument("--evaluator", type=Path,
                   help="T2M evaluator directory: also compare the retain FID")
    p.add_argument("--concept", default="violence_motionx",
                   help="the concept whose retain subset the FID is measured on")
    p.add_argument("--fid-repeats", type=int, default=5, help="protocol repeats for the FID")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)

    from exporter.export import export_bundle
    from hmu_core.eval.classifier import MotionClassifier
    from hmu_core.eval.toxicity import fit_family_judge

    saved = args.model / "classifier.npz"
    judge = fit_family_judge(args.data, classifier=MotionClassifier.load(saved)
                             if saved.is_file() else None)
    if judge is None:
        raise SystemExit(f"{args.data} is not a synthetic set (no clips.jsonl)")
    items = captions(args.data, args.split)
    spans = [(mid, 0, 10 ** 9) for mid, *_ in items]
    toxic = np.array([t for *_, t in items])
    rows, tokens = {}, {}
    with tempfile.TemporaryDirectory(prefix="hmu-int8-") as tmp:
        for name, method in (("fp32", None), ("int8", args.method)):
            bundle = export_bundle(args.model, Path(tmp) / name, quantize=method)
            feats, tokens[name], seconds = generate(bundle, items, args.threads, args.seed,
                                                    args.batch)
            is_toxic = np.array([p in judge.toxic_families
                                 for p in judge.classifier.predict(feats)])
            rows[name] = {"family_match": judge.accuracy(feats, spans),
                          "toxicity_forget": float(is_toxic[toxic].mean()),
                          "toxicity_retain": float(is_toxic[~toxic].mean()),
                          "seconds": seconds}
            if args.evaluator is not None:
                rows[name]["retain_fid"] = retain_fid(bundle, args.data, args.evaluator,
                                                      args.concept, args.fid_repeats,
                                                      args.threads, args.seed)
            print(f"{name}: {rows[name]}", file=sys.stderr, flush=True)
    same = sum(int((a == b).sum()) for a, b in zip(tokens["fp32"], tokens["int8"], strict=True))
    agreement = same / sum(a.size for a in tokens["fp32"])
    deltas = {k: rows["int8"][k] - rows["fp32"][k]
              for k in ("family_match", "toxicity_forget", "toxicity_retain")}
    passed = all(abs(d) <= TOLERANCE for d in deltas.values())
    if args.evaluator is not None:
        fp32, int8 = rows["fp32"]["retain_fid"], rows["int8"]["retain_fid"]
        fid_inside = abs(int8["mean"] - fp32["mean"]) <= fp32["ci95"]
        passed = passed and fid_inside
    print(f"{len(items)} {args.split} captions ({int(toxic.sum())} forget), model {args.model}, "
          f"seed {args.seed}, int8 = --quantize {args.method}")
    print(f"{'bundle':<6} {'family match':>12} {'toxicity forget':>15} {'toxicity retain':>15} "
          f"{'gen s':>6}")
    for name, r in rows.items():
        print(f"{name:<6} {100 * r['family_match']:>11.1f}% {100 * r['toxicity_forget']:>14.1f}% "
              f"{100 * r['toxicity_retain']:>14.1f}% {r['seconds']:>6.0f}")
    print("int8 - fp32 (points): " + ", ".join(f"{k} {100 * d:+.1f}" for k, d in deltas.items())
          + f"; int8 tokens equal to fp32: {100 * agreement:.1f}%")
    if args.evaluator is not None:
        print(f"retain FID ({args.fid_repeats} repeats, mean ± 95 % CI): "
              + ", ".join(f"{n} {r['retain_fid']['mean']:.3f} ± {r['retain_fid']['ci95']:.3f}"
                          for n, r in rows.items())
              + f"; int8 {'inside' if fid_inside else 'outside'} the fp32 CI")
    print("PASS" if passed else "FAIL", f"(tolerance {100 * TOLERANCE:.0f} point"
          + (", retain FID inside the fp32 CI)" if args.evaluator is not None else ")"))
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "deltas": deltas, "passed": passed,
                                         "token_agreement": agreement, "count": len(items)},
                                        indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
