"""A tiny handmade HumanML3D-layout dataset, written fresh for each test that asks for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# id -> (frames, caption lines). Lines follow the official caption#tokens#start#end format.
CLIPS: dict[str, tuple[int, list[str]]] = {
    "000001": (60, [
        "a man kicks a ball.#a/DET man/NOUN kick/VERB a/DET ball/NOUN#0.0#0.0",
        "someone kicking forward#someone/PRON kick/VERB forward/ADV#0.0#0.0",
    ]),
    "000002": (80, [
        "a person in a white shirt walks.#a/DET person/NOUN in/ADP a/DET white/ADJ"
        " shirt/NOUN walk/VERB#0.0#0.0",
        "a person walks forward.#a/DET person/NOUN walk/VERB forward/ADV#nan#nan",
    ]),
    "000003": (120, [
        "a person walks then punches the air.#a/DET person/NOUN walk/VERB then/ADV"
        " punch/VERB the/DET air/NOUN#0.0#0.0",
        "a person jabs twice.#a/DET person/NOUN jab/VERB twice/ADV#1.0#4.0",
    ]),
    "000004": (50, [
        "a person waves.#a/DET person/NOUN wave/VERB#0.0#0.0",
    ]),
    "000005": (100, [
        "Kicks high with the right leg.#kick/VERB high/ADV with/ADP the/DET right/ADJ"
        " leg/NOUN#0.0#0.0",
        "a person jumps.#a/DET person/NOUN jump/VERB#0.0#0.0",
    ]),
    "M000001": (60, [
        "a man kicks a ball.#a/DET man/NOUN kick/VERB a/DET ball/NOUN#0.0#0.0",
    ]),
}
SPLITS = {
    "train": ["000001", "000002", "000003", "M000001"],
    "val": ["000004"],
    "test": ["000005"],
}


def write_tiny_dataset(root: Path, motions: bool = True, seed: int = 0) -> Path:
    """Write CLIPS into ``root`` in the HumanML3D layout; features are seeded noise."""
    rng = np.random.default_rng(seed)
    (root / "texts").mkdir(parents=True)
    if motions:
        (root / "new_joint_vecs").mkdir()
        (root / "new_joints").mkdir()
    for motion_id, (frames, lines) in CLIPS.items():
        (root / "texts" / f"{motion_id}.txt").write_text("\n".join(lines) + "\n")
        if motions:
            features = rng.normal(size=(frames, 263)).astype(np.float32)
            features[:, 0] = np.arange(frames)  # frame index in dim 0: crops are checkable
            np.save(root / "new_joint_vecs" / f"{motion_id}.npy", features)
            np.save(root / "new_joints" / f"{motion_id}.npy",
                    rng.normal(size=(frames, 22, 3)).astype(np.float32))
    if motions:
        np.save(root / "Mean.npy", np.full(263, 0.5, dtype=np.float32))
        np.save(root / "Std.npy", np.full(263, 2.0, dtype=np.float32))
    train_val = SPLITS["train"] + SPLITS["val"]
    for name, ids in {**SPLITS, "train_val": train_val, "all": list(CLIPS)}.items():
        (root / f"{name}.txt").write_text("\n".join(ids) + "\n")
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """A handmade dataset with motions (see CLIPS)."""
    return write_tiny_dataset(tmp_path / "tiny")


@pytest.fixture
def tiny_captions_only(tmp_path: Path) -> Path:
    """The same captions and splits without any motion file."""
    return write_tiny_dataset(tmp_path / "tiny_captions", motions=False)
