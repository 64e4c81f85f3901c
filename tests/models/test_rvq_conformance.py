"""RVQ-VAE against the official fixture (../shared/conformance/momask_rvqvae_small.*).

The fixture's state dict must load strictly, and every recorded eval-mode output must be
reproduced: floats within 1e-4, ids exactly, -1 tokens decoded as zero vectors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hmu_core.errors import ConfigError
from hmu_core.models import build
from hmu_core.models.rvq import RVQVAE, RVQVAEConfig

ATOL = 1e-4


@pytest.fixture(scope="module")
def fixture(conformance_dir):
    meta = json.loads((conformance_dir / "momask_rvqvae_small.json").read_text())
    with np.load(conformance_dir / "momask_rvqvae_small.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    return meta, arrays


@pytest.fixture(scope="module")
def vq(fixture):
    meta, arrays = fixture
    model = build("rvqvae", meta["constructor"])
    sd = {k[3:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("sd/")}
    model.load_state_dict(sd, strict=True)
    return model.eval()


def _close(got: torch.Tensor, want: np.ndarray) -> float:
    got_np = got.detach().numpy()
    assert got_np.shape == want.shape
    err = float(np.abs(got_np - want).max())
    assert err <= ATOL, err
    return err


def test_state_dict_keys_and_shapes_match_official(fixture, vq):
    meta, _ = fixture
    want = [(e["key"], tuple(e["shape"])) for e in meta["state_dict_keys"]]
    got = [(k, tuple(v.shape)) for k, v in vq.state_dict().items()]
    assert got == want


def test_shared_codebook_state_dict_keys(fixture):
    meta, _ = fixture
    cfg = dict(meta["constructor"])
    cfg["args(Namespace)"] = {**cfg["args(Namespace)"], "shared_codebook": True}
    model = build("rvqvae", cfg)
    keys = [k for k in model.state_dict() if k.startswith("quantizer.")]
    assert keys == meta["shared_codebook_true_quantizer_state_dict_keys"]
    assert model.quantizer.layers[0] is model.quantizer.layers[2]


def test_encoder_latent(fixture, vq):
    _, a = fixture
    with torch.no_grad():
        _close(vq.encoder(vq.preprocess(torch.from_numpy(a["in/motion"]))), a["out/encoder_latent"])


def test_encode_ids_and_codes(fixture, vq):
    _, a = fixture
    with torch.no_grad():
        ids, codes = vq.encode(torch.from_numpy(a["in/motion"]))
    assert ids.dtype == torch.int64
    np.testing.assert_array_equal(ids.numpy(), a["out/encode_code_idx"])
    _close(codes, a["out/encode_all_codes"])


def test_forward_eval(fixture, vq):
    _, a = fixture
    with torch.no_grad():
        recon, commit, perplexity = vq(torch.from_numpy(a["in/motion"]))
    _close(recon, a["out/forward_recon"])
    _close(commit.reshape(1), a["out/forward_commit_loss"])
    _close(perplexity.reshape(1), a["out/forward_perplexity"])


@pytest.mark.parametrize(
    ("ids_name", "layers", "out_name"),
    [
        ("out/encode_code_idx", 3, "out/forward_decoder_allq"),
        ("out/encode_code_idx", 1, "out/forward_decoder_q1"),
        ("in/decode_ids_with_minus1", 3, "out/forward_decoder_minus1"),
    ],
)
def test_forward_decoder(fixture, vq, ids_name, layers, out_name):
    _, a = fixture
    ids = torch.from_numpy(a[ids_name])[..., :layers]
    with torch.no_grad():
        _close(vq.forward_decoder(ids), a[out_name])


def test_minus_one_ids_are_zero_vectors(fixture, vq):
    _, a = fixture
    ids = torch.from_numpy(a["in/decode_ids_with_minus1"])
    codes = vq.quantizer.get_codes_from_indices(ids)  # (Q, B, n, C)
    assert codes.shape == (3, 2, 16, 32)
    assert torch.all(codes[:, 1, 11:] == 0)
    for q in range(3):  # every other position is its codebook row
        rows = vq.quantizer.layers[q].codebook[ids[1, :11, q]]
        assert torch.equal(codes[q, 1, :11], rows)
    # a partial grid is padded with -1 -> zero codes for the missing layers
    partial = vq.quantizer.get_codes_from_indices(ids[..., :1])
    assert torch.all(partial[1:] == 0)
    assert torch.equal(partial[0], codes[0])


def test_quantise_and_decode_from_indices_agree(fixture, vq):
    _, a = fixture
    x = torch.from_numpy(a["in/motion"])
    with torch.no_grad():
        ids, codes = vq.encode(x)
        latent = vq.quantizer.get_codebook_entry(ids)
    torch.testing.assert_close(latent, codes.sum(0), atol=1e-5, rtol=0)


def test_released_default_layout():
    model = RVQVAE(RVQVAEConfig())
    sd = model.state_dict()
    assert len(sd) == 72
    assert sum(p.numel() for p in model.parameters()) == 19_436_807
    assert sd["quantizer.layers.5.codebook"].shape == (512, 512)
    assert not any(n.endswith("codebook") for n, _ in model.named_parameters())
    dilations = [blk.conv1.dilation[0] for blk in model.encoder.model[2][1].model]
    assert dilations == [9, 3, 1]  # reversed in the encoder too (momask.md §7 item 1)
    dec_dilations = [blk.conv1.dilation[0] for blk in model.decoder.model[2][0].model]
    assert dec_dilations == [9, 3, 1]


def _small() -> RVQVAE:
    cfg = RVQVAEConfig(nb_code=16, code_dim=8, output_emb_width=8, width=16, depth=1,
                       num_quantizers=3, quantize_dropout_prob=0.0)
    torch.manual_seed(0)
    return RVQVAE(cfg)


def test_training_forward_initialises_codebook_and_is_seeded():
    x = torch.randn(2, 16, 263, generator=torch.Generator().manual_seed(3))
    outs = []
    for _ in range(2):
        model = _small().train()
        assert torch.all(model.quantizer.layers[0].codebook == 0)
        recon, _, _ = model(x, generator=torch.Generator().manual_seed(7))
        outs.append((recon.detach(), model.quantizer.codebooks.clone()))
        assert model.quantizer.layers[0].init
        assert model.quantizer.codebooks.abs().sum() > 0
    torch.testing.assert_close(outs[0][0], outs[1][0], atol=0, rtol=0)
    torch.testing.assert_close(outs[0][1], outs[1][1], atol=0, rtol=0)


def test_eval_mode_leaves_codebook_untouched(fixture, vq):
    before = vq.quantizer.codebooks.clone()
    _, a = fixture
    with torch.no_grad():
        vq(torch.from_numpy(a["in/motion"]))
        vq.encode(torch.from_numpy(a["in/motion"]))
    assert torch.equal(before, vq.quantizer.codebooks)


def test_training_call_on_loaded_vq_reinitialises_like_upstream(fixture, caplog):
    """momask.md §7 item 2: init/code_sum/code_count are not saved, so a training-mode call
    on a loaded VQ re-initialises the codebook from the batch. We keep that behaviour (resumed
    official training does the same) and log a warning."""
    meta, a = fixture
    model = build("rvqvae", meta["constructor"])
    sd = {k[3:]: torch.from_numpy(v) for k, v in a.items() if k.startswith("sd/")}
    model.load_state_dict(sd, strict=True)
    model.train()
    x = torch.from_numpy(a["in/motion"])
    with torch.no_grad(), caplog.at_level("WARNING"):
        model.encode(x)
    assert "re-initialising" in caplog.text
    assert model.quantizer.layers[0].init
    # after re-init + one EMA step, row 0 is built from batch vectors, not the loaded row
    assert not torch.allclose(model.quantizer.layers[0].codebook[0],
                              sd["quantizer.layers.0.codebook"][0])


def test_quantize_dropout_emits_minus_one():
    model = _small().train()
    latent = torch.randn(2, 8, 4, generator=torch.Generator().manual_seed(1))
    _, ids, _, _ = model.quantizer(latent, force_dropout_index=0)
    assert torch.all(ids[..., 1:] == -1) and torch.all(ids[..., 0] >= 0)
    model.eval()
    _, ids, _, _ = model.quantizer(latent)
    assert torch.all(ids >= 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output_emb_width": 16}, "output_emb_width"),
        ({"stride_t": 3}, "stride_t"),
        ({"vq_act": "tanh"}, "vq_act"),
        ({"vq_norm": "XN"}, "vq_norm"),
    ],
)
def test_bad_config_raises(change, message):
    with pytest.raises(ConfigError, match=message):
        RVQVAEConfig(**change)


def test_build_rejects_unknown_and_missing_keys(fixture):
    meta, _ = fixture
    with pytest.raises(ConfigError, match=r"unknown model kind 'vqvae'.*rvqvae"):
        build("vqvae", meta["constructor"])
    with pytest.raises(ConfigError, match=r"bogus"):
        build("rvqvae", {**meta["constructor"], "bogus": 1})
    partial = {k: v for k, v in meta["constructor"].items() if k != "nb_code"}
    with pytest.raises(ConfigError, match=r"nb_code"):
        build("rvqvae", partial)
    with pytest.raises(ConfigError, match=r"dict of constructor keys"):
        build("rvqvae", [1, 2])


def test_build_accepts_config_object():
    cfg = RVQVAEConfig(nb_code=16, code_dim=8, output_emb_width=8, width=16, depth=1)
    model = build("rvqvae", cfg)
    assert isinstance(model, RVQVAE) and model.config is cfg
