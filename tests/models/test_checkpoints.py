"""Model directories in the official layout: round trips, clip_model handling, every error path,
and ``load_model_set`` over a MoMask-style and a BAMM-style set."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hmu_core.errors import ConfigError, HmuError
from hmu_core.models import build
from hmu_core.models.checkpoints import (
    CheckpointError,
    StateDictMismatchError,
    load_model_dir,
    read_checkpoint,
    save_model_dir,
    write_checkpoint,
)
from hmu_core.models.model_set import ModelSet, load_model_set
from hmu_core.models.opt import read_opt, write_opt
from hmu_core.models.rvq import RVQVAE, RVQVAEConfig

VQ_CFG = RVQVAEConfig(nb_code=16, code_dim=8, output_emb_width=8, width=16, depth=1,
                      num_quantizers=3)
TRANS = dict(code_dim=8, cond_mode="text", latent_dim=16, ff_size=32, num_layers=1,
             num_heads=2, dropout=0.1, clip_dim=512, cond_drop_prob=0.1,
             clip_version="ViT-B/32", num_tokens=16)


def _vq(seed: int = 0) -> RVQVAE:
    torch.manual_seed(seed)
    model = RVQVAE(VQ_CFG)
    g = torch.Generator().manual_seed(seed + 100)
    for layer in model.quantizer.layers:  # a trained-looking, non-zero codebook
        layer.codebook = torch.randn(16, 8, generator=g)
    return model.eval()


def _meta() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=263), rng.uniform(0.5, 2.0, size=263)  # float64, as released


def _same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), key


@pytest.fixture()
def vq_dir(tmp_path) -> Path:
    mean, std = _meta()
    return save_model_dir(tmp_path / "rvq", "rvqvae", _vq(), mean=mean, std=std,
                          payload={"ep": 7})


def test_vq_round_trip_is_bit_identical(vq_dir):
    loaded = load_model_dir(vq_dir, "rvqvae", require_meta=True)
    _same_state(_vq(), loaded.model)
    assert loaded.config == VQ_CFG and not loaded.model.training
    assert loaded.checkpoint == {"ep": 7}
    mean, std = _meta()
    assert loaded.mean.dtype == np.float64 and np.array_equal(loaded.mean, mean)
    assert np.array_equal(loaded.std, std)
    # official layout and dict keys, readable with weights_only
    ckpt = torch.load(vq_dir / "model" / "net_best_fid.tar", weights_only=True)
    assert sorted(ckpt) == ["ep", "vq_model"]
    opt = read_opt(vq_dir)
    assert opt["nb_code"] == "16" and opt["name"] == "rvq"  # official loaders need name
    assert opt["checkpoints_dir"] == "./checkpoints" and opt["dataset_name"] == "t2m"
    assert sorted(p.name for p in vq_dir.parent.iterdir()) == ["rvq"]  # no temp dirs left


def test_length_estimator_round_trip_and_released_dir_without_opt(tmp_path):
    torch.manual_seed(1)
    est = build("length_estimator", {"input_size": 512, "output_size": 50})
    out = save_model_dir(tmp_path / "le", "length_estimator", est)
    assert (out / "model" / "finest.tar").is_file()
    _same_state(est, load_model_dir(out, "length_estimator").model)
    # the released folder has only model/finest.tar {'estimator', 'epoch', 'niter'}
    released = tmp_path / "length_estimator"
    write_checkpoint(released / "model" / "finest.tar",
                     {"estimator": est.state_dict(), "epoch": 3, "niter": 10})
    loaded = load_model_dir(released, "length_estimator")
    _same_state(est, loaded.model)
    assert loaded.checkpoint == {"epoch": 3, "niter": 10}


def test_clip_model_dropped_on_save_and_tolerated_on_load(tmp_path, caplog):
    vq = _vq()
    vq.clip_model = nn.Linear(3, 3)  # stands in for an attached CLIP submodule
    assert any(k.startswith("clip_model.") for k in vq.state_dict())
    out = save_model_dir(tmp_path / "rvq", "rvqvae", vq)
    ckpt = read_checkpoint(out / "model" / "net_best_fid.tar")
    assert not any(k.startswith("clip_model.") for k in ckpt["vq_model"])
    # loading into a model that has clip_model: its keys may be missing
    target = RVQVAE(VQ_CFG)
    target.clip_model = nn.Linear(3, 3)
    from hmu_core.models.checkpoints import load_state_dict_checked

    load_state_dict_checked(target, ckpt["vq_model"], source="x.tar")
    assert torch.equal(target.quantizer.codebooks, vq.quantizer.codebooks)
    # a checkpoint that still carries clip_model.* loads into a model without it
    with caplog.at_level(logging.INFO):
        load_state_dict_checked(RVQVAE(VQ_CFG), vq.state_dict(), source="y.tar")
    assert "ignoring 2 clip_model.* entries" in caplog.text


def test_legacy_net_key_and_fallback_file(tmp_path, caplog):
    vq = _vq()
    d = tmp_path / "old"
    write_opt(d / "opt.txt", VQ_CFG)
    write_checkpoint(d / "model" / "latest.tar", {"net": vq})
    with caplog.at_level(logging.WARNING):
        loaded = load_model_dir(d, "rvqvae")
    assert "net_best_fid.tar not found, using latest.tar" in caplog.text
    _same_state(vq, loaded.model)


def test_existing_directory_needs_overwrite(vq_dir):
    with pytest.raises(CheckpointError, match=r"already exists.*overwrite=True"):
        save_model_dir(vq_dir, "rvqvae", _vq())
    save_model_dir(vq_dir, "rvqvae", _vq(seed=3), overwrite=True)
    _same_state(_vq(seed=3), load_model_dir(vq_dir, "rvqvae").model)
    assert not (vq_dir / "meta").exists()  # the whole directory was replaced


# ---------------------------------------------------------------- error paths


def test_missing_opt_names_the_file(vq_dir):
    (vq_dir / "opt.txt").unlink()
    with pytest.raises(ConfigError, match=r"rvq/opt\.txt not found"):
        load_model_dir(vq_dir, "rvqvae")


def test_missing_checkpoint_lists_tried_files(vq_dir):
    (vq_dir / "model" / "net_best_fid.tar").unlink()
    with pytest.raises(CheckpointError, match=r"tried net_best_fid.tar, latest.tar, base.tar"):
        load_model_dir(vq_dir, "rvqvae")
    with pytest.raises(CheckpointError, match=r"model/x\.tar not found"):
        load_model_dir(vq_dir, "rvqvae", file="x.tar")


def test_missing_meta_names_the_file(vq_dir):
    (vq_dir / "meta" / "std.npy").unlink()
    with pytest.raises(CheckpointError, match=r"meta/std\.npy not found"):
        load_model_dir(vq_dir, "rvqvae", require_meta=True)
    assert load_model_dir(vq_dir, "rvqvae").mean is None  # optional unless required


def _rewrite(vq_dir: Path, edit) -> None:
    path = vq_dir / "model" / "net_best_fid.tar"
    ckpt = torch.load(path, weights_only=True)
    edit(ckpt["vq_model"])
    torch.save(ckpt, path)


def test_missing_key_names_key_file_and_shape(vq_dir):
    _rewrite(vq_dir, lambda sd: sd.pop("decoder.model.0.bias"))
    with pytest.raises(StateDictMismatchError) as err:
        load_model_dir(vq_dir, "rvqvae")
    msg = str(err.value)
    assert "net_best_fid.tar" in msg and "missing key 'decoder.model.0.bias'" in msg
    assert "(16,)" in msg and err.value.missing == ["decoder.model.0.bias"]


def test_unexpected_key_is_named(vq_dir):
    _rewrite(vq_dir, lambda sd: sd.__setitem__("quantizer.layers.3.codebook", torch.zeros(16, 8)))
    with pytest.raises(StateDictMismatchError, match=r"unexpected key 'quantizer\.layers\.3\."
                                                     r"codebook' \(checkpoint shape \(16, 8\)\)"):
        load_model_dir(vq_dir, "rvqvae")


def test_misshaped_key_names_both_shapes(vq_dir):
    _rewrite(vq_dir, lambda sd: sd.__setitem__("quantizer.layers.0.codebook", torch.zeros(32, 8)))
    with pytest.raises(StateDictMismatchError,
                       match=r"'quantizer\.layers\.0\.codebook': checkpoint shape \(32, 8\), "
                             r"model shape \(16, 8\)"):
        load_model_dir(vq_dir, "rvqvae")


def test_wrong_state_key_is_named(vq_dir):
    path = vq_dir / "model" / "net_best_fid.tar"
    torch.save({"t2m_transformer": {}, "ep": 1}, path)
    with pytest.raises(CheckpointError, match=r"no 'vq_model' or 'net' entry.*t2m_transformer"):
        load_model_dir(vq_dir, "rvqvae")


def test_truncated_checkpoint_is_a_clear_error(vq_dir):
    path = vq_dir / "model" / "net_best_fid.tar"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(HmuError, match=r"net_best_fid\.tar: cannot be read.*truncated"):
        load_model_dir(vq_dir, "rvqvae")


class _NotAllowed:
    pass


def test_pickled_objects_are_refused(vq_dir):
    path = vq_dir / "model" / "net_best_fid.tar"
    torch.save({"vq_model": _vq().state_dict(), "obj": _NotAllowed()}, path)
    with pytest.raises(CheckpointError,
                       match=r"weights_only=True.*Unsupported global.*_NotAllowed"):
        read_checkpoint(path)
    path.write_bytes(pickle.dumps([1, 2], protocol=2))  # a bare pickle, not a torch file
    with pytest.raises(CheckpointError, match=r"net_best_fid.tar"):
        read_checkpoint(path)


def test_missing_model_dir(tmp_path):
    with pytest.raises(CheckpointError, match=r"model directory .* not found"):
        load_model_dir(tmp_path / "nope", "rvqvae")
    with pytest.raises(ConfigError, match=r"unknown model kind"):
        load_model_dir(tmp_path, "vq")


# ---------------------------------------------------------------- load_model_set


def _trans_dir(tmp_path: Path, kind: str, seed: int, **extra) -> tuple[Path, nn.Module]:
    torch.manual_seed(seed)
    cfg = dict(TRANS, **extra)
    if kind == "res_transformer":
        cfg.update(num_quantizers=3, shared_codebook=False, share_weight=True)
    model = build(kind, cfg)
    file = "net_best_fid.tar" if kind == "res_transformer" else "latest.tar"
    out = save_model_dir(tmp_path / kind, kind, model, file=file, opt_updates={"vq_name": "rvq"})
    return out, model


def test_load_model_set_momask(tmp_path, vq_dir):
    trans_dir, trans = _trans_dir(tmp_path, "mask_transformer", 1)
    res_dir, res = _trans_dir(tmp_path, "res_transformer", 2)
    opt = read_opt(trans_dir)
    assert opt["n_layers"] == "1" and "code_dim" not in opt  # official spelling, VQ-derived
    assert opt["vq_name"] == "rvq"
    pipe = load_model_set(ModelSet(vq_dir, trans_dir, res_dir))
    assert pipe.trans_kind == "mask_transformer"
    _same_state(trans, pipe.trans)
    _same_state(res, pipe.res)
    _same_state(_vq(), pipe.vq)
    assert pipe.trans.config.code_dim == 8 and pipe.res.config.num_quantizers == 3
    assert np.array_equal(pipe.mean, _meta()[0])
    assert set(pipe.opts) == {"vq", "trans", "res"}
    assert load_model_set(ModelSet(vq_dir, trans_dir)).res is None


def test_load_model_set_bamm_is_detected(tmp_path, vq_dir):
    trans_dir, trans = _trans_dir(tmp_path, "bamm_transformer", 4)
    pipe = load_model_set(ModelSet(vq_dir, trans_dir))
    assert pipe.trans_kind == "bamm_transformer"
    _same_state(trans, pipe.trans)


def test_load_model_set_legacy_trans_key(tmp_path, vq_dir):
    trans_dir, trans = _trans_dir(tmp_path, "mask_transformer", 1)
    path = trans_dir / "model" / "latest.tar"
    ckpt = torch.load(path, weights_only=True)
    torch.save({"trans": ckpt.pop("t2m_transformer"), **ckpt}, path)
    _same_state(trans, load_model_set(ModelSet(vq_dir, trans_dir)).trans)


def test_load_model_set_errors(tmp_path, vq_dir):
    trans_dir, _ = _trans_dir(tmp_path, "mask_transformer", 1, num_tokens=32, code_dim=8)
    with pytest.raises(CheckpointError, match=r"token_emb.weight' has 34 rows.*nb_code=16"):
        load_model_set(ModelSet(vq_dir, trans_dir))
    with pytest.raises(StateDictMismatchError, match=r"token_emb.weight"):
        load_model_set(ModelSet(vq_dir, trans_dir), trans_kind="mask_transformer")
    with pytest.raises(CheckpointError, match=r"transformer directory .* not found"):
        load_model_set(ModelSet(vq_dir, tmp_path / "missing"))
    (vq_dir / "meta" / "mean.npy").unlink()
    with pytest.raises(CheckpointError, match=r"meta/mean\.npy not found"):
        load_model_set(ModelSet(vq_dir, trans_dir))


@pytest.mark.parametrize("name", ["momask_mask_transformer_small", "momask_res_transformer_small",
                                  "momask_res_transformer_small_noshare"])
def test_build_takes_the_fixture_constructor_records(conformance_dir, name):
    import json

    meta = json.loads((conformance_dir / f"{name}.json").read_text())
    kind = "res_transformer" if "res" in name else "mask_transformer"
    model = build(kind, meta["constructor"])  # "opt.num_tokens" -> num_tokens
    with np.load(conformance_dir / f"{name}.npz") as npz:
        sd = {k[3:]: torch.from_numpy(npz[k]) for k in npz.files if k.startswith("sd/")}
    model.load_state_dict(sd, strict=True)
    assert model.config.num_tokens == 64
    partial = {k: v for k, v in meta["constructor"].items() if k != "latent_dim"}
    with pytest.raises(ConfigError, match=r"missing config key\(s\) \['latent_dim'\]"):
        build(kind, partial)
