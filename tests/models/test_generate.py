"""Text -> Motion (hmu_core.models.generate) over tiny random MoMask and BAMM model sets."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
import torch

from hmu_core.errors import ConfigError, HmuError
from hmu_core.models import build
from hmu_core.models.checkpoints import save_model_dir
from hmu_core.models.generate import MotionGenerator, generate_motions, load_generator
from hmu_core.models.model_set import (
    LoadedModelSet,
    resolve_model_set,
    write_model_set,
)
from hmu_core.motion.motion import Motion
from hmu_core.sampling.lengths import MAX_TOKENS, MIN_TOKENS
from hmu_core.sampling.params import SamplingParams
from hmu_core.text.registry import DEFAULT_TEXT_ENCODER

CLIP_DIM, NB_CODE, CODE_DIM, Q = 8, 16, 8, 3
_TRANS = dict(code_dim=CODE_DIM, cond_mode="text", latent_dim=16, ff_size=32, num_layers=1,
              num_heads=2, dropout=0.1, clip_dim=CLIP_DIM, cond_drop_prob=0.1,
              clip_version="ViT-B/32", num_tokens=NB_CODE)


class HashEncoder:
    """Deterministic stand-in text encoder: a seeded Gaussian vector per text."""

    name = "test-hash"

    def __init__(self, dim: int = CLIP_DIM) -> None:
        self.dim = dim

    def encode(self, texts: list[str]) -> torch.Tensor:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dim)
                for t in texts]
        return torch.from_numpy(np.stack(rows).astype(np.float32))


def _parts(kind: str = "mask_transformer"):
    torch.manual_seed(0)
    vq = build("rvqvae", dict(
        num_quantizers=Q, shared_codebook=False, quantize_dropout_prob=0.2, mu=0.99,
        input_width=263, nb_code=NB_CODE, code_dim=CODE_DIM, output_emb_width=CODE_DIM,
        down_t=2, stride_t=2, width=16, depth=1, dilation_growth_rate=3, activation="relu",
        norm=None))
    for name, buf in vq.named_buffers():
        if name.endswith("codebook"):
            buf.copy_(torch.randn_like(buf))
    trans = build(kind, _TRANS)
    res = build("res_transformer", {**_TRANS, "shared_codebook": False, "share_weight": True,
                                    "num_quantizers": Q})
    est = build("length_estimator", dict(input_size=CLIP_DIM, output_size=50))
    rng = np.random.default_rng(0)
    mean, std = rng.standard_normal(263) * 0.1, rng.uniform(0.5, 1.5, 263)
    return vq.eval(), trans.eval(), res.eval(), est.eval(), mean, std


def _generator(kind: str = "mask_transformer", with_res: bool = True, with_est: bool = True):
    vq, trans, res, est, mean, std = _parts(kind)
    pipe = LoadedModelSet(vq=vq, trans=trans, res=res if with_res else None, mean=mean,
                          std=std, trans_kind=kind)
    return MotionGenerator(pipeline=pipe, text_encoder=HashEncoder(),
                       length_estimator=est if with_est else None, source={"model_dir": "x"})


@pytest.fixture(scope="module")
def momask():
    return _generator()


def test_seconds_give_frames_and_provenance(momask):
    out = generate_motions(momask, "a person jumps twice", seconds=2.0, seed=3)
    (motion,) = out.motions
    assert isinstance(motion, Motion) and motion.num_frames == 40 and motion.fps == 20
    assert motion.features.shape == (40, 263) and motion.joints.shape == (40, 22, 3)
    assert motion.text == "a person jumps twice"
    prov = motion.provenance
    assert prov["seed"] == 3 and prov["model_dir"] == "x" and prov["model_kind"] == "momask"
    assert prov["sampling"] == SamplingParams().to_dict() and prov["length_source"] == "seconds"
    assert out.tokens[0].shape == (10, Q)
    assert json.dumps(prov)  # JSON-ready


def test_batch_equals_per_prompt_and_seeds_matter(momask):
    prompts = ["walk forward", "wave the left hand"]
    batch = generate_motions(momask, prompts, seconds=[2.0, 3.0], seed=7)
    assert [m.num_frames for m in batch.motions] == [40, 60]
    for i, prompt in enumerate(prompts):
        alone = generate_motions(momask, prompt, seconds=[2.0, 3.0][i], seed=7 + i)
        np.testing.assert_array_equal(alone.tokens[0], batch.tokens[i])
        np.testing.assert_allclose(alone.motions[0].features, batch.motions[i].features,
                                   atol=1e-5)
    other = generate_motions(momask, prompts[0], seconds=2.0, seed=99)
    assert not np.array_equal(other.tokens[0], batch.tokens[0])


def test_length_estimator_path_is_seeded(momask):
    runs = [generate_motions(momask, ["jump", "sit down"], seed=5) for _ in range(2)]
    lengths = [m.provenance["token_length"] for m in runs[0].motions]
    assert lengths == [m.provenance["token_length"] for m in runs[1].motions]
    for motion, n in zip(runs[0].motions, lengths, strict=True):
        assert MIN_TOKENS <= n <= MAX_TOKENS and motion.num_frames == 4 * n
        assert motion.provenance["length_source"] == "length_estimator"


def test_without_residual_or_estimator():
    gen = _generator(with_res=False, with_est=False)
    out = generate_motions(gen, "run", seconds=2.4)
    assert out.motions[0].num_frames == 48 and out.tokens[0].shape == (12, 1)
    with pytest.raises(ConfigError, match="no duration given"):
        generate_motions(gen, "run")


def test_bamm_given_and_predicted_lengths():
    gen = _generator("bamm_transformer")
    given = generate_motions(gen, ["kick", "spin"], seconds=2.0, seed=1)
    assert [m.num_frames for m in given.motions] == [40, 40]
    predicted = generate_motions(gen, ["kick", "spin"], seed=1)
    for motion in predicted.motions:
        n = motion.provenance["token_length"]
        assert 1 <= n <= 49 and motion.num_frames == 4 * n
        assert motion.provenance["length_source"] == "bamm_end_token"


@pytest.mark.parametrize("seconds", [1.0, 10.0, float("nan"), float("inf"), -2.0, "x", 1e308,
                                     b"3", True])
def test_bad_seconds(momask, seconds):
    with pytest.raises(ConfigError):
        generate_motions(momask, "walk", seconds=seconds)


def test_one_token_and_a_bom_in_torch(momask):
    """The shared checks: ``tokens=[1]`` runs (the residual transformer's prefix mask had one
    column too few for it), a byte-order mark is not recorded, NUL-only prompts are refused."""
    out = generate_motions(momask, ["\ufeffwalk"], tokens=[1])
    assert out.motions[0].num_frames == 4 and out.motions[0].text == "walk"
    with pytest.raises(ConfigError, match="U\\+0000"):
        generate_motions(momask, "\x00", seconds=2.0)


def test_bad_prompts_seeds_and_encoder(momask):
    for prompts in ("", ["ok", "  "], []):
        with pytest.raises(ConfigError):
            generate_motions(momask, prompts, seconds=2.0)
    with pytest.raises(ConfigError):
        generate_motions(momask, "walk", seconds=2.0, seed=-1)
    with pytest.raises(ConfigError):
        generate_motions(momask, ["a", "b"], seconds=2.0, seeds=[1])
    with pytest.raises(ConfigError, match="8-d"):
        MotionGenerator(pipeline=momask.pipeline, text_encoder=HashEncoder(dim=5))


def _save_set(root, base="trans", kind="mask_transformer"):
    vq, trans, res, est, mean, std = _parts(kind)
    save_model_dir(root / "vq", "rvqvae", vq, mean=mean, std=std)
    # As hmu's trainers do: the text encoder's width and name go into opt.txt.
    recorded = {"clip_dim": CLIP_DIM, "text_encoder": "test-hash"}
    save_model_dir(root / base, kind, trans, opt_updates=recorded)
    save_model_dir(root / "res", "res_transformer", res, opt_updates=recorded)
    save_model_dir(root / "length_estimator", "length_estimator", est)


def test_model_set_directory_round_trip(tmp_path):
    _save_set(tmp_path)
    models = resolve_model_set(tmp_path)
    assert models.trans == tmp_path / "trans" and models.res == tmp_path / "res"
    assert models.text_encoder == DEFAULT_TEXT_ENCODER
    gen = load_generator(models, text_encoder=HashEncoder())
    out = generate_motions(gen, "walk", seed=2)
    assert out.motions[0].provenance["model_dir"] == str(tmp_path)
    assert out.motions[0].provenance["res"] == str(tmp_path / "res")


def test_model_set_json_names_parts_and_encoder(tmp_path):
    _save_set(tmp_path, base="bamm", kind="bamm_transformer")
    write_model_set(tmp_path, text_encoder="clip:/w/ViT-B-32.pt", vq="vq", trans="bamm",
                    res=None)
    models = resolve_model_set(tmp_path)
    assert models.trans == tmp_path / "bamm" and models.res is None
    assert models.text_encoder == "clip:/w/ViT-B-32.pt"
    assert resolve_model_set(tmp_path, text_encoder="minilm").text_encoder == "minilm"
    gen = load_generator(models, text_encoder=HashEncoder())
    assert gen.kind == "bamm" and gen.pipeline.res is None


def test_model_set_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve_model_set(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no vq"):
        resolve_model_set(tmp_path)
    (tmp_path / "hmu.json").write_text("{not json")
    with pytest.raises(ConfigError, match="JSON"):
        resolve_model_set(tmp_path)
    (tmp_path / "hmu.json").write_text(json.dumps({"format": "hmu-model-set", "vq": "vq",
                                                   "trans": "trans"}))
    with pytest.raises(ConfigError, match="not found"):
        resolve_model_set(tmp_path)
    (tmp_path / "vq").mkdir()
    (tmp_path / "trans").mkdir()
    with pytest.raises(HmuError):  # empty directories: no opt.txt / checkpoint
        load_generator(resolve_model_set(tmp_path), text_encoder=HashEncoder())
