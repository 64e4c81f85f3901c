"""Family match of generated motions on a synthetic set: does the motion do what the caption says?

For every held-out clip of a synthetic dataset (``hmu data synth``) and each of its whole-clip
captions, generate one motion (seeded, the clip's length in tokens, 40..196 frames), classify it
with the dataset's ground-truth motion classifier (``hmu_core.classifier.MotionClassifier``,
fitted on the train split or loaded) and print the share whose predicted action family equals
the clip's label. ``--vq-only`` instead measures the RVQ-VAE's ceiling: real held-out motions
encoded and decoded by the VQ (all layers), classified the same way.

    .venv/bin/python scripts/eval_family_match.py runs/tiny_models --data runs/synth_small
    .venv/bin/python scripts/eval_family_match.py runs/tiny_models --trans runs/tiny_models/bamm \\
        --data runs/synth_small
    .venv/bin/python scripts/eval_family_match.py --vq runs/tiny_models/vq --vq-only \\
        --data runs/synth_small

The reference line is the classifier on the real clips (cropped to the same frames): the most
any model can reach. Exit status 0; the figure is printed, and written as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

MAX_FRAMES = 196  # the models make 40..196 frames (10..49 tokens of 4 frames)
MIN_TOKENS, MAX_TOKENS, UNIT = 10, 49, 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("model", nargs="?", type=Path, help="model set directory (vq/, trans/ or "
                   "bamm/, res/, optional hmu.json)")
    p.add_argument("--vq", type=Path, help="RVQ-VAE directory (overrides the model set's)")
    p.add_argument("--trans", type=Path, help="base transformer directory (MoMask or BAMM)")
    p.add_argument("--res", type=Path, help="residual transformer directory")
    p.add_argument("--text-encoder", help="text encoder spec (default: hmu.json's, else minilm)")
    p.add_argument("--data", type=Path, required=True, help="synthetic dataset directory")
    p.add_argument("--split", default="test", help="held-out split to evaluate (default: test)")
    p.add_argument("--classifier", type=Path,
                   help="saved MotionClassifier (.npz); default: fit one on the train split")
    p.add_argument("--save-classifier", type=Path, help="write the fitted classifier here")
    p.add_argument("--captions", choices=("all", "first"), default="all",
                   help="every whole-clip caption of a clip, or only its first (default: all)")
    p.add_argument("--vq-only", action="store_true",
                   help="measure the VQ round trip on the real held-out motions instead")
    p.add_argument("--seed", type=int, default=0, help="request i uses seed + i (default: 0)")
    p.add_argument("--batch", type=int, default=64, help="prompts per generation batch")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", type=Path, help="also write the result as JSON here")
    return p.parse_args(argv)


def clip_tokens(frames: int) -> int:
    """Token length of a clip of ``frames`` feature frames, clamped to the models' range."""
    return int(np.clip(min(frames, MAX_FRAMES) // UNIT, MIN_TOKENS, MAX_TOKENS))


def load_classifier(args: argparse.Namespace):
    from hmu_core.classifier import MotionClassifier

    if args.classifier is not None:
        return MotionClassifier.load(args.classifier)
    clf = MotionClassifier.fit_on_dataset(args.data, "train", target="label", seed=0)
    if args.save_classifier is not None:
        clf.save(args.save_classifier)
    return clf


def held_out(args: argparse.Namespace) -> list[tuple[str, str, str, int]]:
    """``(clip id, caption, label, tokens)`` per evaluated caption."""
    from hmu_core.data.humanml3d import HumanML3D
    from hmu_core.synth.generate import read_clip_records

    data = HumanML3D(args.data)
    records = read_clip_records(args.data)
    items = []
    for mid in data.ids(args.split):
        captions = [c.text for c in data.captions(mid) if c.whole_clip]
        if args.captions == "first":
            captions = captions[:1]
        tokens = clip_tokens(len(data.features(mid)))
        items += [(mid, text, records[mid]["label"], tokens) for text in captions]
    return items


def reference_motions(args: argparse.Namespace, ids: list[str]) -> list[np.ndarray]:
    """The real clips cropped to at most 196 frames (a multiple of 4): what a model could make."""
    from hmu_core.data.humanml3d import HumanML3D

    data = HumanML3D(args.data)
    out = []
    for mid in ids:
        f = data.features(mid)[:MAX_FRAMES]
        out.append(f[: max(len(f) // UNIT * UNIT, UNIT)])
    return out


def vq_round_trip(args: argparse.Namespace, motions: list[np.ndarray]) -> list[np.ndarray]:
    """Encode and decode every motion with the VQ (all quantiser layers), de-normalised."""
    import torch

    from hmu_core.data.datasets import denormalize
    from hmu_core.models.checkpoints import load_model_dir

    vq_dir = args.vq
    if vq_dir is None:
        from hmu_core.models.model_set import resolve_model_set

        vq_dir = resolve_model_set(args.model).vq
    vq = load_model_dir(vq_dir, "rvqvae", require_meta=True)
    model = vq.model.eval()
    out = []
    with torch.no_grad():
        for f in motions:
            x = torch.from_numpy(((f - vq.mean) / vq.std).astype(np.float32))[None]
            ids, _ = model.encode(x)
            out.append(denormalize(model.forward_decoder(ids)[0].numpy(), vq.mean, vq.std))
    return out


def generated(args: argparse.Namespace, items: list[tuple[str, str, str, int]]
              ) -> tuple[list[np.ndarray], str]:
    """One generated motion per item (batched; request i seeded ``seed + i``)."""
    from hmu_core.models.generate import generate_motions, load_generator
    from hmu_core.models.model_set import resolve_model_set

    parts = {"vq": args.vq, "trans": args.trans, "res": args.res}
    models = resolve_model_set(args.model, text_encoder=args.text_encoder, **parts)
    gen = load_generator(models)
    out = []
    for start in range(0, len(items), args.batch):
        chunk = items[start:start + args.batch]
        result = generate_motions(gen, [text for _, text, _, _ in chunk],
                                  seconds=[tokens * UNIT / 20.0 for *_, tokens in chunk],
                                  seeds=[args.seed + start + i for i in range(len(chunk))])
        out += [m.features for m in result.motions]
        print(f"  generated {start + len(chunk)}/{len(items)}", file=sys.stderr, flush=True)
    return out, gen.kind


def share(predicted: list[str], labels: list[str]) -> float:
    return float(np.mean([p == y for p, y in zip(predicted, labels, strict=True)]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.model is None and (args.vq is None or (not args.vq_only and args.trans is None)):
        raise SystemExit("give a model set directory, or --vq (and --trans unless --vq-only)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    clf = load_classifier(args)
    items = held_out(args)
    if args.vq_only:  # one item per clip: the motion, not the caption, is what is measured
        items = list({item[0]: item for item in reversed(items)}.values())[::-1]
    labels = [label for _, _, label, _ in items]
    real = reference_motions(args, [mid for mid, *_ in items])
    reference = share(clf.predict(real), labels)
    if args.vq_only:
        motions, what = vq_round_trip(args, real), "vq round trip"
    else:
        motions, what = generated(args, items)
    predicted = clf.predict(motions)
    figure = share(predicted, labels)
    seconds = time.perf_counter() - started
    misses = Counter(f"{y}->{p}" for p, y in zip(predicted, labels, strict=True) if p != y)
    hits = len(labels) - sum(misses.values())
    unit = "clips" if args.vq_only else "captions"
    print(f"{what}: family match {figure:.1%} ({hits}/{len(labels)} {args.split} {unit}); "
          f"classifier on the real clips {reference:.1%}; {seconds:.0f} s")
    print("most frequent confusions (label->predicted): "
          + ", ".join(f"{k} {v}" for k, v in misses.most_common(6)))
    if args.json is not None:
        record = {"what": what, "family_match": figure, "reference": reference,
                  "count": len(labels), "split": args.split, "seed": args.seed,
                  "seconds": seconds, "confusions": dict(misses.most_common())}
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
