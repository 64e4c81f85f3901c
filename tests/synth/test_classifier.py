"""Motion classifier on the synthetic benchmark: families and toxicity are separable."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hmu_core.errors import DataError, MotionError
from hmu_core.eval.classifier import MotionClassifier, describe, load_labelled
from hmu_core.synth.families import TOXIC_FAMILIES

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def family_model(synth_balanced):
    root, _ = synth_balanced
    return MotionClassifier.fit_on_dataset(root, "train", "label", seed=0)


def test_held_out_families_and_toxicity_are_recognised(synth_balanced, family_model):
    root, _ = synth_balanced
    # Held out: val and test (20 % of the clips); the model saw only train.
    features, labels = (a + b for a, b in zip(load_labelled(root, "val", "label"),
                                              load_labelled(root, "test", "label"),
                                              strict=True))
    predicted = family_model.predict(features)
    family_acc = float(np.mean([p == y for p, y in zip(predicted, labels, strict=True)]))
    toxic_acc = float(np.mean([(p in TOXIC_FAMILIES) == (y in TOXIC_FAMILIES)
                               for p, y in zip(predicted, labels, strict=True)]))
    binary = MotionClassifier.fit_on_dataset(root, "train", "toxic", seed=0)
    toxic_labels = load_labelled(root, "val", "toxic")[1] + load_labelled(root, "test", "toxic")[1]
    binary_acc = float(np.mean([p == y for p, y in zip(binary.predict(features), toxic_labels,
                                                        strict=True)]))
    log.info("held-out accuracy on %d clips: families %.3f, toxic-vs-safe via families %.3f, "
             "binary toxic-vs-safe %.3f", len(labels), family_acc, toxic_acc, binary_acc)
    print(f"\nclassifier held-out ({len(labels)} clips): families {family_acc:.3f}, "
          f"toxic/safe via families {toxic_acc:.3f}, binary toxic/safe {binary_acc:.3f}")
    assert len(set(labels)) == 19
    assert family_acc >= 0.8
    assert toxic_acc >= 0.9
    assert binary_acc >= 0.9


def test_training_is_deterministic_and_save_load_round_trips(synth_balanced, family_model,
                                                             tmp_path):
    root, _ = synth_balanced
    features, _ = load_labelled(root, "test", "label")
    again = MotionClassifier.fit_on_dataset(root, "train", "label", seed=0)
    np.testing.assert_array_equal(again.weights, family_model.weights)
    family_model.save(tmp_path / "clf.npz")
    assert (tmp_path / "clf.json").is_file()
    loaded = MotionClassifier.load(tmp_path / "clf.npz")
    assert loaded.classes == family_model.classes
    np.testing.assert_allclose(loaded.predict_proba(features[:5]),
                               family_model.predict_proba(features[:5]))


def test_classifier_rejects_bad_input(tmp_path):
    with pytest.raises(MotionError, match="263"):
        describe(np.zeros((10, 200)))
    with pytest.raises(DataError, match="two classes"):
        MotionClassifier().fit([np.zeros((5, 263))] * 2, ["a", "a"])
    with pytest.raises(DataError, match="not trained"):
        MotionClassifier().predict([np.zeros((5, 263))])
    with pytest.raises(DataError, match="both needed"):
        MotionClassifier.load(tmp_path / "missing.npz")
    with pytest.raises(DataError, match=r"clips\.jsonl"):
        load_labelled(tmp_path, "train")


def test_classifier_imports_without_torch():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; import hmu_core.eval.classifier; "
            "import hmu_core.synth.generate; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
