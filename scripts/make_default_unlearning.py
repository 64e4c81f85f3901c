"""Make ``hmu_core/assets/default_unlearning.json``: the safety edit the add-on ships.

    PYTHONPATH=. .venv/bin/python scripts/make_default_unlearning.py [--data runs/synth_small]

The edit is latent code suppression with r 32 codes on every RVQ layer, statistics from the
dataset's motions (issue 13's best edit: forget toxicity 61.8 % -> 1.9 % on the synthetic
benchmark, docs/benchmark_synth/safety.md), concept ``violence_motionx``, seed 0, on the embedded
default model, i.e. the same as

    hmu data synth --size small --seed 0 --out runs/synth_small
    hmu unlearn suppress --model hmu_core/assets/default_model --data runs/synth_small \\
        --concept violence_motionx --r 32 --seed 0 --out runs/unlearned/suppress-data-r32

The statistics need the training data, which building the add-on must not: so this script runs
once, and the record it writes (concepts, parameters, the suppressed codes of every layer, the
sha256 of the edited tensors before and after) is committed. ``hmu_core.unlearn.sets.
reapply_suppression`` redoes the edit from it, without data, and checks every tensor's sha256.
Without ``--data`` the synthetic set is made in a temporary folder (~1 min); statistics ~1-2
min on 2 idle cores (9 min on a busy machine). The record's paths are written relative to the
repository. The committed record was made from generator version 2 data; the benchmarked
``runs/unlearned/suppress-data-r32`` (61.8 % -> 1.9 %) from version 1 data, which selects the
same codes except one (layer 3: code 80 there, 98 here).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONCEPT = "violence_motionx"
R = 32
SEED = 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="the synthetic 'small' set, seed 0 (default: made "
                   "in a temporary folder)")
    p.add_argument("--out", type=Path, help="record file (default: the asset)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from hmu_core.assets import DEFAULT_UNLEARNING, default_model_dir
    from hmu_core.atomic import write_json
    from hmu_core.data.concept_data import load_concept_data
    from hmu_core.models.model_set import load_model_set
    from hmu_core.synth.generate import write_synthetic_dataset
    from hmu_core.unlearn.code_stats import SampleProtocol
    from hmu_core.unlearn.record import relative_source
    from hmu_core.unlearn.sets import make_suppress_set
    from hmu_core.unlearn.suppress_model import SuppressConfig, num_layers

    out = args.out or DEFAULT_UNLEARNING
    with tempfile.TemporaryDirectory(prefix="hmu-default-unlearning-") as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "synth_small"
            write_synthetic_dataset(data, "small", SEED)
        meta = json.loads((data / "synth_meta.json").read_text(encoding="utf-8")) \
            if (data / "synth_meta.json").is_file() else {}
        loaded = load_model_set(default_model_dir())
        config = SuppressConfig(r=dict.fromkeys(range(num_layers(loaded)), R), stats="data",
                                protocol=SampleProtocol(seed=SEED))
        made = make_suppress_set(loaded, load_concept_data(data, [CONCEPT]), config,
                                 Path(tmp) / "set", text_encoder=None, seed=SEED,
                                 cache_dir=Path(tmp) / "cache")
    record = {**made.record, "source": relative_source(made.record["source"], REPO)}
    record["data"]["dir"] = f"hmu's synthetic {meta.get('size', '?')} set, seed " \
        f"{meta.get('seed', '?')}, generator version {meta.get('version', '?')}" \
        if args.data is None else relative_source({"dir": str(args.data)}, REPO)["dir"]
    write_json(out, record)
    print(f"{out}: suppressed " + ", ".join(f"layer {q}: {len(c)}" for q, c in
                                            made.result.codes.items()) + " codes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
