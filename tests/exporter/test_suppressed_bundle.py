"""A suppressed model set exports and runs in the torch-free runtime unchanged: torch and the
runtime sample the same tokens, and no suppressed code of any layer is ever emitted."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from exporter.export import export_bundle
from exporter.runtime import Generator
from hmu_core.models.generate import generate_motions, load_generator
from hmu_core.models.model_set import load_model_set, resolve_model_set, write_unlearned_set
from hmu_core.sampling.params import SamplingParams
from hmu_core.unlearn.suppress_model import suppressed_networks

PROMPTS = ["a person walks forward", "someone kicks hard!", "a man waves his left hand",
           "a person punches twice", "the figure jumps and turns"]
SETTINGS = [(SamplingParams(), 2.4), (SamplingParams(gsample=True, timesteps=6), 3.0),
            (SamplingParams(cond_scale=2.0, topk_filter_thres=0.5), None)]


def _tokens(generator, **kwargs) -> list[np.ndarray]:
    if isinstance(generator, Generator):
        return generator.generate(PROMPTS, **kwargs).tokens
    return generate_motions(generator, PROMPTS, **kwargs).tokens


def _most_used(tokens: list[np.ndarray], layer: int, count: int) -> list[int]:
    used = Counter(int(c) for t in tokens for c in t[:, layer])
    return [c for c, _ in used.most_common(count)]


@pytest.mark.parametrize("set_name", ["momask_set", "bamm_set"])
def test_suppressed_set_parity_and_no_forbidden_code(set_name, request, clip_encoder, tmp_path):
    source = request.getfixturevalue(set_name)
    original = load_generator(resolve_model_set(source), text_encoder=clip_encoder)
    seconds = None if set_name == "bamm_set" else 2.4
    before = [t for s in range(4) for t in _tokens(original, seconds=seconds, seed=10 * s)]
    # Suppress the codes the original uses most, so the edit has something to change.
    codes = {0: _most_used(before, 0, 4), 1: _most_used(before, 1, 3), 2: _most_used(before, 2, 2)}
    loaded = load_model_set(source)
    networks = suppressed_networks(loaded, codes)
    out = write_unlearned_set(loaded, tmp_path / "set", {"method": "suppress"},
                              edited={"trans": networks.trans, "res": networks.res},
                              opt_updates={"res": {"share_weight": False}})
    assert "share_weight: False" in (out / "res" / "opt.txt").read_text()
    bundle = export_bundle(out, tmp_path / "bundle", text_encoder=clip_encoder)
    torch_gen = load_generator(resolve_model_set(out), text_encoder=clip_encoder)
    runtime = Generator(bundle, device="cpu", threads=1)
    changed = 0
    for params, secs in SETTINGS:
        secs = None if set_name == "bamm_set" else secs
        for seed in (0, 100, 200):
            a = _tokens(torch_gen, seconds=secs, seed=seed, params=params)
            b = _tokens(runtime, seconds=secs, seed=seed, params=params)
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, y)
                for q, forbidden in codes.items():
                    assert not np.isin(x[:, q], forbidden).any(), (q, x[:, q], forbidden)
            changed += sum(not np.array_equal(x, y) for x, y in zip(
                a, _tokens(original, seconds=secs, seed=seed, params=params), strict=True))
    assert changed > 0  # the edit did change what the model makes


def test_unshared_set_with_nothing_suppressed_gives_the_original_tokens(momask_set, clip_encoder,
                                                                        tmp_path):
    loaded = load_model_set(momask_set)
    networks = suppressed_networks(loaded, {})
    assert networks.edits == []
    out = write_unlearned_set(loaded, tmp_path / "set", {"method": "suppress"},
                              edited={"trans": networks.trans, "res": networks.res},
                              opt_updates={"res": {"share_weight": False}})
    original = load_generator(resolve_model_set(momask_set), text_encoder=clip_encoder)
    rewritten = load_generator(resolve_model_set(out), text_encoder=clip_encoder)
    for params, seconds in SETTINGS:
        for x, y in zip(_tokens(original, seconds=seconds, seed=3, params=params),
                        _tokens(rewritten, seconds=seconds, seed=3, params=params), strict=True):
            np.testing.assert_array_equal(x, y)
