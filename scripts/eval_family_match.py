"""Family match of generated motions on a synthetic set: does the motion do what the caption says?

For every held-out clip of a synthetic dataset (``hmu data synth``) and each of its whole-clip
captions, generate one motion and judge it with the dataset's family judge, as the safety
protocol judges its retain lines (``hmu_core.eval.safety``: the caption lines, their length
rule, the seeded batches; ``hmu_core.eval.toxicity.FamilyJudge``: the ground-truth motion
classifier, fitted on the train split or loaded), and print the share whose predicted action
family equals the clip's label. ``--vq-only`` instead measures the RVQ-VAE's ceiling: real
held-out motions encoded and decoded by the VQ (all layers), classified the same way.

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

from hmu_core.sampling.lengths import MAX_FRAMES, UNIT_LENGTH


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
    p.add_argument("--seed", type=int, default=0,
                   help="request k uses the stream seed * 1000003 + k (default: 0)")
    p.add_argument("--batch", type=int, default=64, help="prompts per generation batch")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", type=Path, help="also write the result as JSON here")
    return p.parse_args(argv)


def load_judge(args: argparse.Namespace):
    """The dataset's family judge, with the saved classifier when one is given."""
    from hmu_core.eval.classifier import MotionClassifier
    from hmu_core.eval.toxicity import fit_family_judge

    classifier = None if args.classifier is None else MotionClassifier.load(args.classifier)
    judge = fit_family_judge(args.data, seed=0, classifier=classifier)
    if judge is None:
        raise SystemExit(f"{args.data} is not a synthetic set (no clips.jsonl)")
    if args.save_classifier is not None:
        judge.classifier.save(args.save_classifier)
    return judge


def held_out(args: argparse.Namespace):
    """The whole-clip caption lines of the held-out split (each clip's first with --captions
    first)."""
    from hmu_core.data.humanml3d import HumanML3D
    from hmu_core.eval.safety import caption_lines

    data = HumanML3D(args.data)
    return caption_lines(data, data.ids(args.split), first_only=args.captions == "first",
                         whole_clip_only=True)


def reference_motions(args: argparse.Namespace, ids: list[str]) -> list[np.ndarray]:
    """The real clips cropped to at most 196 frames (a multiple of 4): what a model could make."""
    from hmu_core.data.humanml3d import HumanML3D

    data = HumanML3D(args.data)
    out = []
    for mid in ids:
        f = data.features(mid)[:MAX_FRAMES]
        out.append(f[: max(len(f) // UNIT_LENGTH * UNIT_LENGTH, UNIT_LENGTH)])
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


def generated(args: argparse.Namespace, lines) -> tuple[list[np.ndarray], str]:
    """One generated motion per caption line (``eval.safety.generate_lines``)."""
    from hmu_core.eval.safety import generate_lines, torch_generate
    from hmu_core.models.generate import load_generator
    from hmu_core.models.model_set import resolve_model_set

    parts = {"vq": args.vq, "trans": args.trans, "res": args.res}
    models = resolve_model_set(args.model, text_encoder=args.text_encoder, **parts)
    gen = load_generator(models)
    motions = generate_lines(torch_generate(gen), lines, args.seed, args.batch)
    return [m.features for m in motions], gen.kind


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
    judge = load_judge(args)
    lines = held_out(args)
    if args.vq_only:  # one line per clip: the motion, not the caption, is what is measured
        lines = list({line.clip: line for line in reversed(lines)}.values())[::-1]
    labels = [judge.family(*line.span) for line in lines]
    real = reference_motions(args, [line.clip for line in lines])
    reference = share(judge.classifier.predict(real), labels)
    if args.vq_only:
        motions, what = vq_round_trip(args, real), "vq round trip"
    else:
        motions, what = generated(args, lines)
    predicted = judge.classifier.predict(motions)
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
