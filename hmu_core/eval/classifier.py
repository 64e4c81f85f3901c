"""A small motion classifier over HumanML3D 263-d features, numpy only.

It judges motions by what they look like, not by their captions: trained on a dataset's action
families (or forget vs retain labels), it gives the toxicity rate of generated motions and checks
that the synthetic benchmark's families are distinguishable. The model is deliberately simple
and deterministic: a fixed-length descriptor of a clip (temporal statistics of root motion, joint
positions, joint velocities and foot contacts, over the whole clip and over a few time
segments), standardised, then multinomial logistic regression with L2, trained by full-batch
gradient descent with momentum from a seeded start. Saved as npz + JSON, never pickled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from hmu_core.atomic import save_npz, write_json
from hmu_core.errors import DataError, MotionError
from hmu_core.motion.skeleton import FEATURE_DIM

SEGMENTS = 4
"""Equal time segments whose statistics enter the descriptor (when things happen)."""

# Feature channels used: root (rot vel, xz vel, height), ric positions, local velocities,
# foot contacts. The 6-D rotations (67:193) repeat the positions and are left out.
_CHANNELS = np.r_[0:4, 4:67, 193:259, 259:263]
# Floor of the per-descriptor scale used for standardising. On the synthetic sets a few
# descriptors are constant up to ~1e-5 (the feet's lowest height: the rig locks them to the
# floor; the hips' lateral offsets), so with a tiny floor a 1 cm deviation in a generated or
# reconstructed motion becomes ~1000 standard deviations and decides the class by itself.
# Descriptors are in metres, metres per frame, radians or 0..1 contacts; 1e-3 leaves every
# informative one as it was (held-out accuracy on real clips unchanged).
SCALE_FLOOR = 1e-3
_FORMAT = "hmu.motion_classifier"
_VERSION = 1


def describe(features: np.ndarray) -> np.ndarray:
    """Fixed-length descriptor of one clip.

    Args:
        features: (T, 263) un-normalised HumanML3D features (as in ``new_joint_vecs``), T >= 1.

    Returns:
        (D,) float64: per channel the mean, std, min, max over the clip and the mean and std
        over each of :data:`SEGMENTS` time segments; then the total turn and root
        displacement (the sums of dims 0-2) and the clip length in seconds.

    Raises:
        MotionError: wrong shape or non-finite values.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != FEATURE_DIM or x.shape[0] < 1:
        raise MotionError(f"classifier input must be (T, {FEATURE_DIM}) features with T >= 1, "
                          f"got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise MotionError("classifier input contains non-finite values")
    c = x[:, _CHANNELS]
    bounds = np.linspace(0, len(c), SEGMENTS + 1).round().astype(int)
    seg = []
    for lo, hi in pairwise(bounds):
        part = c[min(lo, len(c) - 1):max(hi, lo + 1)]  # at least one frame per segment
        seg += [part.mean(axis=0), part.std(axis=0)]
    totals = x[:, 0:3].sum(axis=0)
    return np.concatenate([c.mean(0), c.std(0), c.min(0), c.max(0), *seg, totals,
                           [len(x) / 20.0]])


class MotionClassifier:
    """Multinomial logistic regression on :func:`describe` descriptors.

    Attributes:
        classes: label names, index order of the probability columns.
        l2: weight of the L2 penalty on the weights (not the biases).
        steps: full-batch gradient steps; lr: step size (momentum 0.9).
    """

    def __init__(self, l2: float = 1e-2, steps: int = 400, lr: float = 0.5):
        self.l2, self.steps, self.lr = float(l2), int(steps), float(lr)
        self.classes: tuple[str, ...] = ()
        self.mean = np.zeros(0)
        self.scale = np.ones(0)
        self.weights = np.zeros((0, 0))
        self.bias = np.zeros(0)

    # -- training ------------------------------------------------------------------------------
    def fit(self, features_list: Sequence[np.ndarray], labels: Sequence[str],
            seed: int = 0) -> MotionClassifier:
        """Train on clips and their labels.

        Args:
            features_list: N arrays (T_i, 263), un-normalised.
            labels: N label strings (at least two distinct).
            seed: seeds the initial weights; the same inputs and seed give the same model.

        Raises:
            DataError: lengths differ or fewer than two classes.
        """
        if len(features_list) != len(labels):
            raise DataError(f"{len(features_list)} clips but {len(labels)} labels")
        classes = tuple(sorted(set(labels)))
        if len(classes) < 2:
            raise DataError(f"need at least two classes to train, got {classes}")
        x = np.stack([describe(f) for f in features_list])
        self.classes = classes
        self.mean = x.mean(axis=0)
        self.scale = np.maximum(x.std(axis=0), SCALE_FLOOR)
        z = (x - self.mean) / self.scale
        index = {c: i for i, c in enumerate(classes)}
        y = np.zeros((len(labels), len(classes)))
        y[np.arange(len(labels)), [index[label] for label in labels]] = 1.0
        rng = np.random.default_rng(seed)
        w = rng.normal(0.0, 0.01, (z.shape[1], len(classes)))
        b = np.zeros(len(classes))
        vw, vb = np.zeros_like(w), np.zeros_like(b)
        n = len(z)
        for _ in range(self.steps):
            p = _softmax(z @ w + b)
            gw = z.T @ (p - y) / n + self.l2 * w
            gb = (p - y).mean(axis=0)
            vw = 0.9 * vw - self.lr * gw
            vb = 0.9 * vb - self.lr * gb
            w, b = w + vw, b + vb
        self.weights, self.bias = w, b
        return self

    @classmethod
    def fit_on_dataset(cls, root: str | Path, split: str = "train", target: str = "label",
                       seed: int = 0, **kwargs: float) -> MotionClassifier:
        """Train on a synthetic dataset's split with labels from its ``clips.jsonl``.

        Args:
            root: dataset directory written by ``hmu data synth``.
            split: split file name without ``.txt``.
            target: 'label' (action family) or 'toxic' ('toxic' / 'safe').
            kwargs: constructor options (l2, steps, lr).
        """
        features, labels = load_labelled(root, split, target)
        return cls(**kwargs).fit(features, labels, seed)

    # -- inference -----------------------------------------------------------------------------
    def predict_proba(self, features_list: Sequence[np.ndarray]) -> np.ndarray:
        """(N, K) class probabilities, columns in :attr:`classes` order."""
        if not self.classes:
            raise DataError("the classifier is not trained; call fit() or load() first")
        x = np.stack([describe(f) for f in features_list])
        return _softmax(((x - self.mean) / self.scale) @ self.weights + self.bias)

    def predict(self, features_list: Sequence[np.ndarray]) -> list[str]:
        """The most probable label of each clip."""
        proba = self.predict_proba(features_list)
        return [self.classes[i] for i in np.argmax(proba, axis=1)]

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write ``path`` (.npz arrays) and the same name with .json (classes and options)."""
        path = Path(path).with_suffix(".npz")
        save_npz(path, mean=self.mean, scale=self.scale, weights=self.weights, bias=self.bias)
        write_json(path.with_suffix(".json"), {
            "format": _FORMAT, "version": _VERSION, "classes": list(self.classes),
            "l2": self.l2, "steps": self.steps, "lr": self.lr,
            "descriptor": {"segments": SEGMENTS, "channels": _CHANNELS.tolist()}})

    @classmethod
    def load(cls, path: str | Path) -> MotionClassifier:
        """Read a classifier written by :meth:`save`.

        Raises:
            DataError: a file is missing, of another format or shapes disagree.
        """
        path = Path(path).with_suffix(".npz")
        meta_path = path.with_suffix(".json")
        if not path.is_file() or not meta_path.is_file():
            raise DataError(f"classifier files {path} and {meta_path} are both needed; train "
                            "and save a classifier first")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT or meta.get("version") != _VERSION:
            raise DataError(f"{meta_path} is not a version-{_VERSION} motion classifier")
        model = cls(meta["l2"], meta["steps"], meta["lr"])
        with np.load(path, allow_pickle=False) as arrays:
            model.mean, model.scale = arrays["mean"], arrays["scale"]
            model.weights, model.bias = arrays["weights"], arrays["bias"]
        model.classes = tuple(meta["classes"])
        if model.weights.shape != (len(model.mean), len(model.classes)):
            raise DataError(f"{path}: weights {model.weights.shape} do not match "
                            f"{len(model.mean)} descriptor dims and {len(model.classes)} classes")
        return model


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def load_labelled(root: str | Path, split: str = "train",
                  target: str = "label") -> tuple[list[np.ndarray], list[str]]:
    """Features and labels of a synthetic dataset's split.

    Raises:
        DataError: unknown target, missing files, or an id without a metadata record.
    """
    from hmu_core.data.humanml3d import HumanML3D
    from hmu_core.synth.generate import read_clip_records

    if target not in ("label", "toxic"):
        raise DataError(f"unknown classifier target {target!r}; use 'label' or 'toxic'")
    records = read_clip_records(root)
    data = HumanML3D(root)
    features, labels = [], []
    for motion_id in data.ids(split):
        record = records.get(motion_id)
        if record is None:
            raise DataError(f"{root}: id {motion_id} of {split}.txt has no record in "
                            "clips.jsonl; regenerate the dataset")
        features.append(data.features(motion_id))
        labels.append(record["label"] if target == "label" else
                      ("toxic" if record["toxic"] else "safe"))
    return features, labels
