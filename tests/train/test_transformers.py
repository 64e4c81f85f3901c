"""Mask / residual / BAMM trainers: losses, cached text features, loading back, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError
from hmu_core.models import build, resolve_kind
from hmu_core.models.checkpoints import load_model_dir, read_checkpoint
from hmu_core.models.model_set import ModelSet, load_model_set
from hmu_core.train.data import EncodedChunks, TextFeatureCache, text_motion_splits
from hmu_core.train.loop import RunOptions
from hmu_core.train.runtime import init_runtime
from hmu_core.train.transformers import MODEL_KINDS, STATE_KEYS, TransformerTask
from hmu_core.train.transformers import train_transformer as train

from .conftest import HashEncoder, tiny_trans_preset

CPU = init_runtime("cpu")


@pytest.mark.parametrize("kind", ["mask", "res", "bamm"])
def test_losses_finite_and_decreasing_on_a_repeated_batch(kind, synth_dir, vq_dir, encoder,
                                                          tmp_path):
    preset = tiny_trans_preset()
    vq = load_model_dir(vq_dir, "rvqvae", require_meta=True)
    train_ds, _ = text_motion_splits(HumanML3D(synth_dir), vq.mean, vq.std, preset, seed=0)
    texts = TextFeatureCache(encoder, [c.text for e in train_ds.entries for c in e.captions])
    _cls, cfg_cls = resolve_kind(MODEL_KINDS[kind])
    extra = dict(num_quantizers=3) if kind == "res" else {}
    config = cfg_cls(**preset.model_config(kind), code_dim=16, num_tokens=32, clip_dim=512,
                     **extra)
    torch.manual_seed(0)
    model = build(MODEL_KINDS[kind], config)
    task = TransformerTask(kind, model, vq.model, preset, train_ds, None, texts, CPU, tmp_path,
                           seed=0)
    batch = list(range(8))
    losses = []
    for step in range(20):
        torch.manual_seed(step % 2)  # the same masks every other step: a repeated batch
        losses.append(task.train_step(batch)["loss"])
    assert all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < 0.85 * np.mean(losses[:4])


def test_text_features_are_encoded_once_per_run(synth_dir, vq_dir, tmp_path):
    counting = HashEncoder(dim=512)
    train("mask", synth_dir, vq_dir, counting, tiny_trans_preset(max_iters=3, val_batches=1),
          RunOptions(out_dir=tmp_path / "m"), runtime=CPU)
    assert counting.calls == 1  # all distinct captions fit one chunk; none encoded per step


def test_a_chunk_encoded_before_by_the_same_encoder_is_answered_from_memory():
    chunks = EncodedChunks(max_bytes=2 * 2 * 16 * 4)  # two chunks of two 16-d captions
    counting, other = HashEncoder(dim=16), HashEncoder(dim=16)
    first = chunks.encode(counting, ["a person walks", "a person kicks"])
    assert torch.equal(chunks.encode(counting, ["a person walks", "a person kicks"]), first)
    assert counting.calls == 1
    chunks.encode(counting, ["a person kicks", "a person walks"])  # another list: encoded
    chunks.encode(other, ["a person walks", "a person kicks"])  # another encoder: encoded
    assert (counting.calls, other.calls) == (2, 1)
    chunks.encode(counting, ["a person walks", "a person kicks"])  # the oldest was dropped
    assert counting.calls == 3


def test_training_the_residual_after_the_base_encodes_nothing_again(synth_dir, vq_dir, tmp_path):
    counting = HashEncoder(dim=512)
    preset = tiny_trans_preset(max_iters=1, val_batches=1)
    train("mask", synth_dir, vq_dir, counting, preset, RunOptions(out_dir=tmp_path / "m"),
          runtime=CPU)
    train("res", synth_dir, vq_dir, counting, preset, RunOptions(out_dir=tmp_path / "r"),
          runtime=CPU)
    assert counting.calls == 1


@pytest.mark.parametrize("kind", ["mask", "res", "bamm"])
def test_resume_after_a_kill_is_bit_identical(kind, synth_dir, vq_dir, encoder, tmp_path):
    preset = tiny_trans_preset(max_iters=6, save_latest=2)
    train(kind, synth_dir, vq_dir, encoder, preset, RunOptions(out_dir=tmp_path / "a", seed=2),
          runtime=CPU)

    def kill(it: int) -> None:
        if it == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(kind, synth_dir, vq_dir, encoder, preset,
              RunOptions(out_dir=tmp_path / "b", seed=2, on_step=kill), runtime=CPU)
    train(kind, synth_dir, vq_dir, encoder, preset,
          RunOptions(out_dir=tmp_path / "b", seed=2, resume=True), runtime=CPU)
    a = read_checkpoint(tmp_path / "a" / "model" / "latest.tar")
    b = read_checkpoint(tmp_path / "b" / "model" / "latest.tar")
    key = STATE_KEYS[kind]
    assert {key, f"opt_{key}", "scheduler", "ep", "total_it"} <= set(a)
    for name, tensor in a[key].items():
        assert torch.equal(tensor, b[key][name]), name


def test_trained_dirs_load_through_load_model_set(synth_dir, vq_dir, encoder, tmp_path):
    preset = tiny_trans_preset(max_iters=2)
    for kind in ("mask", "res", "bamm"):
        train(kind, synth_dir, vq_dir, encoder, preset, RunOptions(out_dir=tmp_path / kind),
              runtime=CPU)
    files = {p.name for p in (tmp_path / "mask" / "model").iterdir()}
    assert {"latest.tar", "net_best_acc.tar"} <= files
    files = {p.name for p in (tmp_path / "res" / "model").iterdir()}
    assert {"latest.tar", "net_best_loss.tar", "net_best_fid.tar"} <= files
    assert set(read_checkpoint(tmp_path / "res" / "model" / "net_best_fid.tar")) >= {
        "res_transformer", "ep"}
    pipe = load_model_set(ModelSet(vq_dir, tmp_path / "mask", tmp_path / "res"))
    assert pipe.trans_kind == "mask_transformer"
    assert pipe.opts["trans"]["vq_name"] == vq_dir.name
    pipe.trans.attach_text_encoder(encoder)
    pipe.res.attach_text_encoder(encoder)
    ids = pipe.trans.generate(["a person walks forward"], torch.tensor([6]), 3, 2.0,
                              generator=torch.Generator().manual_seed(0))
    full = pipe.res.generate(ids, ["a person walks forward"], torch.tensor([6]),
                             generator=torch.Generator().manual_seed(0))
    assert full.shape == (1, 6, 3)
    motion = pipe.vq.forward_decoder(full)
    assert motion.shape == (1, 24, 263) and bool(torch.isfinite(motion).all())
    bamm = load_model_set(ModelSet(vq_dir, tmp_path / "bamm"))
    assert bamm.trans_kind == "bamm_transformer"


def test_other_encoder_width_loads_with_its_clip_dim(synth_dir, vq_dir, tmp_path):
    enc = HashEncoder(dim=48)
    train("mask", synth_dir, vq_dir, enc, tiny_trans_preset(max_iters=2),
          RunOptions(out_dir=tmp_path / "m"), runtime=CPU)
    loaded = load_model_dir(tmp_path / "m", "mask_transformer",
                            overrides={"code_dim": 16, "num_tokens": 32, "clip_dim": 48})
    assert loaded.model.cond_emb.weight.shape == (32, 48)
    assert loaded.opt["clip_dim"] == "48" and loaded.opt["text_encoder"] == "test-hash-48"
    # load_model_set reads clip_dim from opt.txt (official files lack it: 512)
    loaded = load_model_set(ModelSet(vq_dir, tmp_path / "m"))
    assert loaded.trans.cond_emb.weight.shape == (32, 48)


def test_unknown_kind_is_refused(synth_dir, vq_dir, encoder, tmp_path):
    with pytest.raises(ConfigError, match="unknown transformer"):
        train("gpt", synth_dir, vq_dir, encoder, tiny_trans_preset(),
              RunOptions(out_dir=tmp_path / "x"), runtime=CPU)
