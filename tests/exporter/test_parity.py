"""Same request, same tokens: torch ``generate_motions`` vs the onnxruntime ``Generator``.

Both run the one request loop (``hmu_core.sampling.loop``) over their own backend, so a grid
over the sampler's knobs and the ways a length can be given must give identical tokens, and
every bad input must be refused identically (type and message) before any network runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from exporter.runtime import Generator
from hmu_core.errors import ConfigError, HmuError
from hmu_core.models.generate import generate_motions, load_generator
from hmu_core.models.model_set import resolve_model_set
from hmu_core.sampling.params import SamplingParams

PROMPTS = ["a person walks forward", "someone kicks hard!", "a man waves his left hand"]


def _torch(model_set, encoder):
    return load_generator(resolve_model_set(model_set), text_encoder=encoder)


@pytest.fixture(scope="module")
def worlds(momask_set, momask_bundle, bamm_set, bamm_bundle, clip_encoder):
    """``kind -> (torch generator, runtime)`` over the same tiny random weights."""
    return {"momask": (_torch(momask_set, clip_encoder),
                       Generator(momask_bundle, device="cpu", threads=1)),
            "bamm": (_torch(bamm_set, clip_encoder),
                     Generator(bamm_bundle, device="cpu", threads=1))}


def _assert_same(a, b, atol: float = 1e-4) -> None:
    assert len(a.tokens) == len(b.tokens)
    for x, y in zip(a.tokens, b.tokens, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.motions, b.motions, strict=True):
        assert x.num_frames == y.num_frames == 4 * y.provenance["token_length"]
        np.testing.assert_allclose(x.features, y.features, atol=atol, rtol=0)
        np.testing.assert_allclose(x.joints, y.joints, atol=atol, rtol=0)
        for key in ("seed", "token_length", "length_source", "sampling", "model_kind",
                    "text_encoder"):
            assert x.provenance[key] == y.provenance[key]


def _both(worlds, kind: str, prompts=PROMPTS, **kwargs):
    torch_gen, runtime = worlds[kind]
    a = generate_motions(torch_gen, prompts, **kwargs)
    b = runtime.generate(prompts, **kwargs)
    _assert_same(a, b)
    return b


# The request lengths in every form a caller may use: tokens [10, 15, 22] (2.0, 3.0, 4.4 s at
# 20 fps, 4 frames a token; none on a rounding tie, so float32 asks for the same), or one
# duration for all prompts.
SCALAR_SECONDS = 3.0
GIVEN = {
    "seconds float": dict(seconds=SCALAR_SECONDS),
    "seconds np.float32": dict(seconds=np.float32(SCALAR_SECONDS)),
    "seconds 0-d array": dict(seconds=np.array(SCALAR_SECONDS)),
    "seconds list": dict(seconds=[2.0, 3.0, 4.4]),
    "seconds tuple": dict(seconds=(2.0, np.float32(3.0), 4.4)),
    "seconds np.array": dict(seconds=np.array([2.0, 3.0, 4.4])),
    "tokens list": dict(tokens=[10, 15, 22]),
    "tokens tuple": dict(tokens=(10, np.int64(15), 22)),
    "tokens np.array int32": dict(tokens=np.array([10, 15, 22], np.int32)),
}
LIST_FORM = {"seconds": dict(seconds=[2.0, 3.0, 4.4]), "tokens": dict(tokens=[10, 15, 22])}
_MOMASK = [dict(gsample=g, timesteps=t, topk_filter_thres=k, num_res_layers=r)
           for g, t, k, r in itertools.product((False, True), (1, 4), (0.0, 0.9), (-1, 0, 1))]
_BAMM = [dict(num_res_layers=r, cond_scale=c) for r, c in itertools.product((-1, 0, 1), (4.0, 1.0))]
GRID = [(kind, knobs, lengths) for kind, cases in (("momask", _MOMASK), ("bamm", _BAMM))
        for knobs in cases for lengths in ("given", "estimated")]


@pytest.mark.parametrize("kind, knobs, lengths", GRID,
                         ids=[f"{k}-{'-'.join(f'{n}={v}' for n, v in p.items())}-{ln}"
                              for k, p, ln in GRID])
def test_grid(worlds, kind, knobs, lengths):
    """MoMask/BAMM x categorical/Gumbel x timesteps x top-k x residual layers x given/estimated
    lengths; the given lengths cycle through every input form of ``GIVEN``."""
    index = GRID.index((kind, knobs, lengths))
    form = list(GIVEN)[index % len(GIVEN)]
    kwargs = GIVEN[form] if lengths == "given" else {}
    out = _both(worlds, kind, params=SamplingParams(**knobs), seed=11 + index, **kwargs)
    layers = 3 if knobs["num_res_layers"] == -1 else knobs["num_res_layers"] + 1
    assert all(t.shape[1] == layers for t in out.tokens)
    source = out.motions[0].provenance["length_source"]
    if lengths == "estimated":
        assert source == ("length_estimator" if kind == "momask" else "bamm_end_token")
    else:
        assert source == form.split()[0]


@pytest.mark.parametrize("form", list(GIVEN))
def test_every_input_form_is_its_list_form(worlds, form):
    """A numpy scalar, a 0-d array, a tuple or an array asks for what the plain list asks."""
    key = form.split()[0]
    plain = dict(seconds=[SCALAR_SECONDS] * 3) if "float" in form or "0-d" in form else \
        LIST_FORM[key]
    for kind, (_, runtime) in worlds.items():
        want = runtime.generate(PROMPTS, seed=3, **plain)
        got = _both(worlds, kind, seed=3, **GIVEN[form])
        assert [m.provenance["token_length"] for m in got.motions] == \
            [m.provenance["token_length"] for m in want.motions]
        for x, y in zip(want.tokens, got.tokens, strict=True):
            np.testing.assert_array_equal(x, y)


def test_explicit_seeds_and_short_lengths(worlds):
    """Explicit seeds; a 1-token motion (it crashed both worlds) next to a 2-token one."""
    params = SamplingParams(timesteps=5, gsample=True, cond_scale=2.5, num_res_layers=1)
    out = _both(worlds, "momask", PROMPTS[:2], seconds=2.4, seeds=[5, 9], params=params)
    assert out.tokens[0].shape == (12, 2)
    out = _both(worlds, "momask", PROMPTS[:2], tokens=[1, 2], seed=6)
    assert [t.shape[0] for t in out.tokens] == [1, 2]


def test_seed_and_prompt_change_the_tokens(worlds):
    _, runtime = worlds["momask"]
    one = runtime.generate(PROMPTS[0], seconds=2.0, seed=12).tokens[0]
    assert not np.array_equal(one, runtime.generate(PROMPTS[0], seconds=2.0, seed=13).tokens[0])
    assert not np.array_equal(one, runtime.generate(PROMPTS[1], seconds=2.0, seed=12).tokens[0])


def test_batch_equals_alone(worlds):
    _, runtime = worlds["momask"]
    batch = runtime.generate(PROMPTS[:2], seconds=[2.0, 3.0], seed=7)
    alone = runtime.generate(PROMPTS[1], seconds=3.0, seed=8)
    np.testing.assert_array_equal(batch.tokens[1], alone.tokens[0])
    np.testing.assert_allclose(batch.motions[1].features, alone.motions[0].features, atol=1e-5)


REFUSED = [
    dict(seconds=np.array([2.0, 3.0])),  # two durations for one prompt
    dict(seconds=np.array([[2.0]])),
    dict(seconds=np.float32(math.nan)),
    dict(seconds=np.float64(1.0)),
    dict(seconds=np.array(12.0)),
    dict(seconds=np.bool_(True)),
    dict(seconds=[np.float32(3.0), 2.0]),
    dict(seconds="3"),
    dict(seconds=1e308),
    dict(seconds=2.0, tokens=[12]),
    dict(tokens=np.array(12)),
    dict(tokens=np.int64(12)),
    dict(tokens=12),
    dict(tokens=[12.0]),
    dict(tokens=np.array([12.0])),
    dict(tokens=[True]),
    dict(tokens=[np.bool_(True)]),
    dict(tokens=[0]),
    dict(tokens=np.array([50], np.uint8)),
    dict(tokens=[[12]]),
    dict(tokens=[12, 13]),
    dict(seed=-1),
    dict(seed=np.float32(1)),
    dict(seeds=[1, 2]),
    dict(seeds=np.array([1.5])),
    dict(params={"timesteps": 3}),
    dict(params=SamplingParams(num_res_layers=3)),
    dict(prompts=""),
    dict(prompts=[b"walk"]),
    dict(prompts=np.array(["walk"])),
]


@pytest.mark.parametrize("kind", ["momask", "bamm"])
@pytest.mark.parametrize("kwargs", REFUSED, ids=[repr(k)[:50] for k in REFUSED])
def test_both_refuse_the_same(worlds, kind, kwargs, monkeypatch):
    """Same error type and message in both worlds, and no network runs in either."""
    torch_gen, runtime = worlds[kind]
    monkeypatch.setattr(runtime, "_run", lambda *a, **k: pytest.fail("a graph ran"))
    monkeypatch.setattr(torch_gen, "encode", lambda *a, **k: pytest.fail("a network ran"))
    kwargs = {"prompts": "a person walks", **kwargs}
    if "seconds" not in kwargs and "tokens" not in kwargs:
        kwargs["seconds"] = 2.0
    prompts = kwargs.pop("prompts")
    with pytest.raises(HmuError) as from_torch:
        generate_motions(torch_gen, prompts, **kwargs)
    with pytest.raises(HmuError) as from_runtime:
        runtime.generate(prompts, **kwargs)
    assert type(from_torch.value) is type(from_runtime.value)
    assert str(from_torch.value) == str(from_runtime.value)
    assert "\n" not in str(from_runtime.value)


def test_both_refuse_a_missing_length_estimator(worlds, monkeypatch):
    """A MoMask set without an estimator needs lengths: the same refusal in both worlds."""
    torch_gen, runtime = worlds["momask"]
    monkeypatch.setattr(torch_gen, "length_estimator", None)
    monkeypatch.setattr(runtime, "facts",
                        dataclasses.replace(runtime.facts, has_length_estimator=False))
    messages = []
    for generate in (lambda: generate_motions(torch_gen, "walk"),
                     lambda: runtime.generate("walk")):
        with pytest.raises(ConfigError, match="no length estimator") as info:
            generate()
        messages.append(str(info.value))
    assert messages[0] == messages[1]
