"""The paper's causal check as a regression test, on the embedded tiny MoMask.

Find the codes LCR removes for ``kick``; splice the stretch of a real kick's token sequence
that holds those codes into the tokens of a safe motion; decode. Before LCR the spliced stretch
moves toward a kick (the ground-truth family classifier's P(kick) rises far above the safe
baseline); after LCR the same tokens decode through the edited codebook and it no longer does.
Without the toxic codes (the stretch's other codes kept) nothing happens either, so it is the
removed codes that carry the kick.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hmu_core.assets import default_classifier_path, default_model_dir
from hmu_core.data.concept_data import ConceptSpec, load_concept_data
from hmu_core.data.datasets import denormalize, normalize
from hmu_core.eval.classifier import MotionClassifier
from hmu_core.models.model_set import load_model_set
from hmu_core.synth.generate import write_synthetic_dataset
from hmu_core.unlearn.code_stats import SampleProtocol
from hmu_core.unlearn.lcr_model import LCRConfig, run_lcr

SAFE_FAMILIES = ("walk", "wave", "clap", "bow", "raise_arms", "march", "squat")


@pytest.fixture(scope="module")
def kick_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("causal") / "synth"
    write_synthetic_dataset(out, 240, seed=11, toxic_share=0.5)
    return out


def test_removed_codes_carry_the_kick(kick_data):
    vq = load_model_set(default_model_dir()).parts["vq"]
    original = vq.model
    edited = load_model_set(default_model_dir()).parts["vq"]
    data = load_concept_data(kick_data, ["kick"])
    result = run_lcr(edited, data, [ConceptSpec("kick", 16)],
                     LCRConfig(protocol=SampleProtocol(repeats=2)))
    toxic = np.array(result.removed[0])
    assert len(toxic) == 16

    classifier = MotionClassifier.load(default_classifier_path())
    kick = classifier.classes.index("kick")
    labels = {c["id"]: c["label"] for c in map(json.loads, (kick_data / "clips.jsonl").open())}
    assert vq.mean is not None and vq.std is not None

    def encode(clip: str) -> np.ndarray:  # always with the ORIGINAL codebook
        feats = data.dataset.features(clip)[:196]
        feats = feats[: len(feats) // 4 * 4]
        with torch.no_grad():
            ids, _ = original.encode(torch.from_numpy(normalize(feats, vq.mean, vq.std))[None])
        return ids[0, :, 0].numpy()

    def p_kick(model: torch.nn.Module, ids: np.ndarray, window: slice) -> float:
        with torch.no_grad():
            x = model.forward_decoder(torch.from_numpy(ids)[None, :, None])[0].numpy()
        return float(classifier.predict_proba([denormalize(x, vq.mean, vq.std)[window]])[0, kick])

    kicks = [encode(c) for c in data.ids if labels.get(c) == "kick"]
    kicks = [k for k in kicks if np.isin(k, toxic).any()]
    safe = [encode(c) for c in data.dataset.ids("all") if labels.get(c) in SAFE_FAMILIES][:24]
    assert len(kicks) >= 5 and len(safe) >= 12
    scores: dict[str, list[float]] = {"safe": [], "injected": [], "after_lcr": [], "no_toxic": []}
    for i, tokens in enumerate(safe):
        donor = kicks[i % len(kicks)]
        hits = np.flatnonzero(np.isin(donor, toxic))
        span = min(hits.max() + 1 - hits.min(), len(tokens))
        start = (len(tokens) - span) // 2
        injected = tokens.copy()
        injected[start:start + span] = donor[hits.min():hits.min() + span]
        kept = injected.copy()
        toxic_slots = np.isin(kept[start:start + span], toxic)
        kept[start:start + span][toxic_slots] = tokens[start:start + span][toxic_slots]
        window = slice(start * 4, (start + span) * 4)
        scores["safe"].append(p_kick(original, tokens, window))
        scores["injected"].append(p_kick(original, injected, window))
        scores["after_lcr"].append(p_kick(edited.model, injected, window))
        scores["no_toxic"].append(p_kick(original, kept, window))
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    assert mean["injected"] > 10 * mean["safe"] + 0.03, mean
    assert mean["after_lcr"] < 0.25 * mean["injected"], mean
    assert mean["no_toxic"] < 0.25 * mean["injected"], mean
