"""Files shipped with hmu: the embedded default model (``default_model/``).

The default model is the synthetic benchmark's tiny MoMask with the offline MiniLM text
encoder, plus the classifier of the synthetic action families; ``scripts/make_default_model.py``
says how to reproduce it. Torch-free: this only locates files.
"""

from __future__ import annotations

from pathlib import Path

from hmu_core.errors import ConfigError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"


def default_model_dir() -> Path:
    """The embedded default model set (``vq/ trans/ res/ length_estimator/ hmu.json``).

    Raises:
        ConfigError: the files are missing (a broken install or a sparse checkout).
    """
    if not (DEFAULT_MODEL_DIR / "hmu.json").is_file():
        raise ConfigError(f"the embedded default model is missing from {DEFAULT_MODEL_DIR}; "
                          f"reinstall hmu or rebuild it with scripts/make_default_model.py")
    return DEFAULT_MODEL_DIR


def default_classifier_path() -> Path:
    """The synthetic families' motion classifier (``MotionClassifier.load`` reads it)."""
    return default_model_dir() / "classifier.npz"


DEFAULT_UNLEARNING = Path(__file__).resolve().parent / "default_unlearning.json"
"""The record of the safety edit shipped with the add-on (``scripts/make_default_unlearning.py``
makes it; ``hmu_core.unlearn.sets.reapply_suppression`` applies it without data)."""
