"""T2M evaluator: strict load and identical outputs vs the official modules, released key names
and shapes, order invariance of the wrappers, the official directory layout, bad inputs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hmu_core.errors import ConfigError, DataError, HmuError, MotionError
from hmu_core.eval.evaluator import (
    STATE_KEYS,
    Evaluator,
    EvaluatorConfig,
    load_evaluator,
    meta_stats_from_dataset,
    save_evaluator,
)
from hmu_core.models.checkpoints import CheckpointError, StateDictMismatchError, write_checkpoint

SMALL = EvaluatorConfig(dim_movement_enc_hidden=64, dim_movement_latent=32, dim_text_hidden=32,
                        dim_motion_hidden=48, dim_coemb_hidden=16)
TINY = EvaluatorConfig(dim_movement_enc_hidden=16, dim_movement_latent=8, dim_word=12,
                       dim_text_hidden=8, dim_motion_hidden=8, dim_coemb_hidden=6)


@pytest.fixture(scope="module")
def fixture(conformance_dir: Path) -> dict[str, np.ndarray]:
    with np.load(conformance_dir / "momask_evaluator_small.npz") as npz:
        return {k: npz[k] for k in npz.files}


def _state(fixture: dict[str, np.ndarray], key: str) -> dict[str, torch.Tensor]:
    prefix = f"sd/{key}."
    return {k[len(prefix):]: torch.from_numpy(v) for k, v in fixture.items()
            if k.startswith(prefix)}


@pytest.fixture(scope="module")
def official_dir(tmp_path_factory: pytest.TempPathFactory,
                 fixture: dict[str, np.ndarray]) -> Path:
    """The official release layout: t2m/text_mot_match/model/finest.tar + Comp_v6_KLD005/meta."""
    root = tmp_path_factory.mktemp("checkpoints") / "t2m"
    payload = {key: _state(fixture, key) for key in STATE_KEYS}
    write_checkpoint(root / "text_mot_match" / "model" / "finest.tar", {**payload, "epoch": 7})
    meta = root / "Comp_v6_KLD005" / "meta"
    meta.mkdir(parents=True)
    np.save(meta / "mean.npy", np.linspace(-1, 1, 263))
    np.save(meta / "std.npy", np.linspace(0.5, 2, 263))
    return root


def test_strict_load_reproduces_official_outputs(official_dir: Path,
                                                 fixture: dict[str, np.ndarray]) -> None:
    evaluator = load_evaluator(official_dir, config=SMALL)
    assert evaluator.epoch == 7 and not evaluator.training
    with torch.no_grad():
        movements = evaluator.movement_encoder(torch.from_numpy(fixture["in/motions"])[..., :-4])
    motion = evaluator.motion_embeddings(fixture["in/motions"], fixture["in/m_lens"])
    text = evaluator.text_embeddings(fixture["in/word_embs"], fixture["in/pos_ohot"],
                                     fixture["in/cap_lens"])
    errors = {
        "movements": np.abs(movements.numpy() - fixture["out/movements"]).max(),
        "motion": np.abs(motion - fixture["out/motion_embedding"]).max(),
        "text": np.abs(text - fixture["out/text_embedding"]).max(),
    }
    print("evaluator max abs errors:", errors)
    assert max(errors.values()) < 1e-5, errors


def test_wrappers_return_rows_in_caller_order(official_dir: Path,
                                              fixture: dict[str, np.ndarray]) -> None:
    evaluator = load_evaluator(official_dir / "text_mot_match", config=SMALL)
    order = np.array([2, 0, 1])  # ascending lengths: the official modules would refuse this
    motion = evaluator.motion_embeddings(fixture["in/motions"][order], fixture["in/m_lens"][order])
    text = evaluator.text_embeddings(fixture["in/word_embs"][order],
                                     fixture["in/pos_ohot"][order], fixture["in/cap_lens"][order])
    np.testing.assert_allclose(motion, fixture["out/motion_embedding"][order], atol=1e-5)
    np.testing.assert_allclose(text, fixture["out/text_embedding"][order], atol=1e-5)


def test_released_key_names_and_shapes(conformance_dir: Path) -> None:
    released = json.loads((conformance_dir / "t2m_evaluator_released_shapes.json").read_text())
    evaluator = Evaluator()  # defaults = released sizes
    for key in STATE_KEYS:
        module = getattr(evaluator, key)
        shapes = {k: list(v.shape) for k, v in module.state_dict().items()}
        assert shapes == released[key]["params"]
        assert sum(p.numel() for p in module.parameters()) == released[key]["num_parameters"]
    smoke = released["shapes_smoke_test"]
    kit = Evaluator(EvaluatorConfig(dim_pose=251))
    assert list(kit.movement_encoder.main[0].weight.shape) == \
        released["kit_movement_encoder_first_conv"]
    with torch.no_grad():
        latents = evaluator.movement_encoder(torch.zeros(smoke["motion_in"])[..., :-4])
    assert list(latents.shape) == smoke["movement_latent"]


def test_save_load_round_trip_is_official_layout(tmp_path: Path) -> None:
    mean, std = np.zeros(263, np.float32), np.full(263, 0.5, np.float32)
    evaluator = Evaluator(TINY, mean=mean, std=std, seed=3)
    target = save_evaluator(tmp_path / "t2m" / "text_mot_match", evaluator, epoch=12)
    ckpt = torch.load(target / "model" / "finest.tar", weights_only=True)
    assert set(ckpt) == {*STATE_KEYS, "epoch"} and ckpt["epoch"] == 12
    loaded = load_evaluator(tmp_path / "t2m")  # config from opt.txt, stats from meta/
    assert loaded.config == TINY
    np.testing.assert_array_equal(loaded.std, std)
    rng = np.random.default_rng(0)
    motions = rng.standard_normal((3, 40, 263)).astype(np.float32)
    lens = np.array([40, 8, 21])
    np.testing.assert_array_equal(loaded.motion_embeddings(motions, lens),
                                  evaluator.motion_embeddings(motions, lens))
    assert not np.array_equal(Evaluator(TINY, seed=4).motion_embeddings(motions, lens),
                              evaluator.motion_embeddings(motions, lens))
    with pytest.raises(CheckpointError, match="already exists"):
        save_evaluator(target, evaluator)


def test_normalize_and_meta_stats() -> None:
    mean = np.arange(263, dtype=np.float64)
    std = np.full(263, 2.0)
    meta_mean, meta_std = meta_stats_from_dataset(mean, std)
    assert np.array_equal(meta_mean, mean)
    assert np.allclose(meta_std[:4], 0.4) and np.allclose(meta_std[259:], 0.4)
    assert np.allclose(meta_std[4:259], 2.0) and std[0] == 2.0  # input untouched
    evaluator = Evaluator(TINY, mean=meta_mean, std=meta_std)
    np.testing.assert_allclose(evaluator.normalize(mean + meta_std), 1.0, rtol=1e-6)
    with pytest.raises(ConfigError, match="no mean/std"):
        Evaluator(TINY).normalize(mean)
    with pytest.raises(DataError):
        meta_stats_from_dataset(mean[:200], std[:200])


def test_missing_files_name_the_official_location(tmp_path: Path, official_dir: Path) -> None:
    with pytest.raises(CheckpointError, match=r"text_mot_match/model/finest\.tar"):
        load_evaluator(tmp_path)
    lonely = tmp_path / "solo" / "text_mot_match"
    (lonely / "model").mkdir(parents=True)
    (lonely / "model" / "finest.tar").write_bytes(
        (official_dir / "text_mot_match" / "model" / "finest.tar").read_bytes())
    with pytest.raises(CheckpointError, match="Comp_v6_KLD005/meta"):
        load_evaluator(lonely, config=SMALL)


def test_wrong_sizes_fail_strict_load(official_dir: Path) -> None:
    with pytest.raises(StateDictMismatchError, match="text_encoder"):
        load_evaluator(official_dir, config=dataclasses.replace(SMALL, dim_coemb_hidden=8))


@pytest.mark.parametrize(("lens", "frames", "error"), [
    ([40, 3], 40, MotionError),      # below one latent step
    ([44, 8], 40, MotionError),      # longer than the motion
    ([40.0, 8.0], 40, MotionError),  # not integers
    ([40], 40, MotionError),         # one length for two rows
])
def test_bad_motion_inputs(lens: list, frames: int, error: type[HmuError]) -> None:
    motions = np.zeros((2, frames, 263), np.float32)
    with pytest.raises(error):
        Evaluator(TINY).motion_embeddings(motions, np.array(lens))


def test_bad_text_inputs() -> None:
    evaluator = Evaluator(TINY)
    words, pos = np.zeros((2, 22, 12), np.float32), np.zeros((2, 22, 15), np.float32)
    with pytest.raises(DataError, match="cap_lens"):
        evaluator.text_embeddings(words, pos, np.array([23, 5]))
    with pytest.raises(DataError, match="word_embs"):
        evaluator.text_embeddings(words[..., :10], pos, np.array([5, 5]))
    with pytest.raises(MotionError):
        evaluator.motion_embeddings(np.zeros((2, 40, 250), np.float32), np.array([40, 40]))


def test_protocol_batch_end_to_end() -> None:
    """How the evaluation protocol calls the API: token lists -> embeddings -> metrics."""
    from hmu_core.eval import metrics
    from hmu_core.eval.word_vectors import encode_batch, fit_word_vectors, mask_toxic_tokens

    captions = [[("a", "DET"), ("man", "NOUN"), (verb, "VERB"), ("forward", "ADV")]
                for verb in ("walk", "kick", "run", "jog")] * 8  # one pool of 32
    vectors = fit_word_vectors(captions, dim=TINY.dim_word, seed=0)
    evaluator = Evaluator(TINY, seed=1)
    rng = np.random.default_rng(0)
    motions = rng.standard_normal((32, 48, 263)).astype(np.float32)
    m_lens = rng.choice(np.arange(8, 49, 4), size=32)
    text = evaluator.text_embeddings(*encode_batch(captions, vectors))
    motion = evaluator.motion_embeddings(motions, m_lens)
    masked = [mask_toxic_tokens(c, ["kick"]) for c in captions]
    clean = evaluator.text_embeddings(*encode_batch([m for m, _ in masked], vectors))
    changed = np.array([c for _, c in masked])
    assert changed.sum() == 8 and np.array_equal(clean[~changed], text[~changed])
    assert not np.allclose(clean[changed], text[changed])
    assert metrics.r_precision(text, motion).shape == (3,)
    assert metrics.mm_notox(clean, motion) != metrics.matching_score(text, motion)
