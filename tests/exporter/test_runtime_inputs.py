"""Bad requests to the runtime ``Generator``: one ``ConfigError`` line each, before any network
runs; the edge cases that are valid (1 token, a BOM, a huge seed) give a motion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exporter.runtime import Generator
from hmu_core.errors import ConfigError
from hmu_core.sampling.params import SamplingParams


@pytest.fixture(scope="module")
def runtime(momask_bundle):
    return Generator(momask_bundle, device="cpu", threads=1)


BAD_PROMPTS = [
    (None, r"prompts must be a str or a list of str, got NoneType"),
    (123, r"got int"),
    (12.5, r"got float"),
    ({"a": 1}, r"got dict"),
    (b"a person walks", r"the prompt is bytes; decode it"),
    (bytearray(b"walk"), r"the prompt is bytes"),
    ([b"a person walks"], r"prompt 0 is bytes; decode it"),
    (["ok", 5], r"prompt 1 is a int, not text"),
    (["ok", None], r"prompt 1 is a NoneType"),
    ([], r"one or more"),
    ((), r"one or more"),
    ("", r"prompt 0 is empty or invisible"),
    ("   \t\n", r"empty or invisible"),
    ("\x00", r"control character or lone surrogate U\+0000"),
    ("\x00" * 50, r"U\+0000"),
    ("a person\x00 walks", r"U\+0000"),
    ("walk\x1b[31m", r"U\+001B"),
    ("walk\x7f", r"U\+007F"),
    ("\u200b", r"empty or invisible"),
    ("\u200b\u200c\u200d\u2060\ufeff", r"empty or invisible"),
    ("\ufeff", r"empty or invisible"),
    ("\u3164\u3164", r"empty or invisible"),
    ("\u0301\u0301", r"empty or invisible"),
    ("...!?", r"empty or invisible"),
    ("a person walks \udc80", r"lone surrogate U\+DC80"),
    ("x" * 1001, r"1001 characters"),
    ("\ufeff" + "x" * 1001, r"1001 characters"),
]


@pytest.mark.parametrize("prompts, match", BAD_PROMPTS, ids=[repr(p)[:30] for p, _ in BAD_PROMPTS])
def test_bad_prompts(runtime, prompts, match, monkeypatch):
    calls = []
    monkeypatch.setattr(runtime, "_run", lambda *a, **k: calls.append(a))
    with pytest.raises(ConfigError, match=match) as info:
        runtime.generate(prompts, seconds=2.0)
    assert not calls and "\n" not in str(info.value)


BAD_LENGTHS = [
    (dict(seconds=1e308), r"1e\+308 s is inf frames at 20 fps; the model makes 40..196 frames"),
    (dict(seconds=-1e308), r"finite number > 0"),
    (dict(seconds=math.inf), r"finite number > 0"),
    (dict(seconds=-math.inf), r"finite number > 0"),
    (dict(seconds=math.nan), r"finite number > 0"),
    (dict(seconds=0), r"finite number > 0"),
    (dict(seconds=-2.0), r"finite number > 0"),
    (dict(seconds=1e-320), r"choose a duration in range"),
    (dict(seconds=9.9), r"choose a duration in range"),
    (dict(seconds="3"), r"seconds must be a number, got '3'"),
    (dict(seconds=b"3"), r"seconds must be a number, got b'3'"),
    (dict(seconds=True), r"seconds must be a number, got True"),
    (dict(seconds=[2.0, None]), r"2 durations for 1 prompts"),
    (dict(seconds=[None]), r"seconds must be a number, got None"),
    (dict(seconds={"a": 2}), r"seconds must be a number"),
    (dict(seconds=np.array([2.0, 3.0])), r"2 durations for 1 prompts"),
    (dict(seconds=None, tokens=[0]), r"token lengths must be 1 ints in \[1, 49\]"),
    (dict(seconds=None, tokens=[50]), r"\[1, 49\]"),
    (dict(seconds=None, tokens=[-3]), r"\[1, 49\]"),
    (dict(seconds=None, tokens=[2 ** 70]), r"\[1, 49\]"),
    (dict(seconds=None, tokens=[1.5]), r"\[1, 49\]"),
    (dict(seconds=None, tokens=[True]), r"\[1, 49\]"),
    (dict(seconds=None, tokens=5), r"got 5"),
    (dict(seconds=None, tokens="5"), r"got '5'"),
    (dict(seconds=None, tokens=[[5]]), r"\[1, 49\]"),
    (dict(seconds=None, tokens=[[5], [5, 6]]), r"token lengths must be"),
    (dict(seconds=None, tokens=[]), r"token lengths must be"),
    (dict(tokens=[5]), r"not both"),
]


@pytest.mark.parametrize("kwargs, match", BAD_LENGTHS, ids=[repr(k)[:40] for k, _ in BAD_LENGTHS])
def test_bad_lengths(runtime, kwargs, match, monkeypatch):
    calls = []
    monkeypatch.setattr(runtime, "_run", lambda *a, **k: calls.append(a))
    args = {"seconds": 2.0, **kwargs}
    with pytest.raises(ConfigError, match=match):
        runtime.generate("a person walks", **args)
    assert not calls


BAD_SEEDS = [
    (dict(seed=None), r"seed must be an int >= 0, got None"),
    (dict(seed=-1), r"got -1"),
    (dict(seed=1.0), r"got 1.0"),
    (dict(seed="1"), r"got '1'"),
    (dict(seed=True), r"got True"),
    (dict(seeds=5), r"seeds must be a list of ints >= 0, got 5"),
    (dict(seeds="12"), r"seeds must be a list"),
    (dict(seeds=[]), r"got none"),
    (dict(seeds=[-1]), r"seeds must be ints >= 0"),
    (dict(seeds=[1.5]), r"seeds must be ints >= 0"),
    (dict(seeds=[None]), r"seeds must be ints >= 0"),
    (dict(seeds=[1, 2]), r"2 seeds for 1 prompts"),
]


@pytest.mark.parametrize("kwargs, match", BAD_SEEDS, ids=[repr(k) for k, _ in BAD_SEEDS])
def test_bad_seeds(runtime, kwargs, match, monkeypatch):
    monkeypatch.setattr(runtime, "_run", lambda *a, **k: pytest.fail("a network ran"))
    with pytest.raises(ConfigError, match=match):
        runtime.generate("a person walks", seconds=2.0, **kwargs)


BAD_KNOBS = [
    (dict(cond_scale=1e300), r"cond_scale must be a finite number in \[0, 100\]"),
    (dict(cond_scale=-1.0), r"cond_scale must be a finite number"),
    (dict(cond_scale=math.nan), r"cond_scale"),
    (dict(cond_scale="4"), r"cond_scale must be a number, got '4'"),
    (dict(cond_scale=None), r"cond_scale must be a number"),
    (dict(res_cond_scale=math.inf), r"res_cond_scale"),
    (dict(bamm_refine_cond_scale=1e5), r"bamm_refine_cond_scale"),
    (dict(temperature=0), r"temperature must be a finite number in \[0.001, 100\]"),
    (dict(temperature=1e-300), r"temperature"),
    (dict(temperature=1e9), r"temperature"),
    (dict(res_temperature=-1), r"res_temperature"),
    (dict(topk_filter_thres=1.0), r"topk_filter_thres must be below 1"),
    (dict(topk_filter_thres=-0.1), r"topk_filter_thres must be a finite number in \[0, 1\]"),
    (dict(res_topk_filter_thres=2), r"res_topk_filter_thres"),
    (dict(timesteps=0), r"timesteps must be an int in \[1, 100\]"),
    (dict(timesteps=10 ** 9), r"timesteps"),
    (dict(timesteps=2.5), r"timesteps"),
    (dict(timesteps=True), r"timesteps"),
    (dict(num_res_layers=-2), r"num_res_layers must be an int in \[-1, 64\]"),
    (dict(num_res_layers=1.0), r"num_res_layers"),
    (dict(gsample="no"), r"gsample must be true or false, got 'no'"),
    (dict(force_mask=1), r"force_mask must be true or false"),
]


@pytest.mark.parametrize("knob, match", BAD_KNOBS, ids=[repr(k) for k, _ in BAD_KNOBS])
def test_bad_knobs(knob, match):
    with pytest.raises(ConfigError, match=match):
        SamplingParams(**knob)


def test_knobs_against_the_bundle(runtime, monkeypatch):
    monkeypatch.setattr(runtime, "_run", lambda *a, **k: pytest.fail("a network ran"))
    with pytest.raises(ConfigError, match=r"num_res_layers must be -1 or in \[0, 2\] for this "
                                          r"model \(3 quantizer layers\), got 3"):
        runtime.generate("walk", seconds=2.0, params=SamplingParams(num_res_layers=3))
    with pytest.raises(ConfigError, match="must be a SamplingParams, got dict"):
        runtime.generate("walk", seconds=2.0, params={"timesteps": 3})


def test_valid_edges_give_motions(runtime):
    """``tokens=[1]`` (documented 1..49) made an onnxruntime node failure; a BOM ended up in
    the recorded prompt; numpy scalars and a huge seed are fine."""
    one = runtime.generate("a person walks", tokens=[1]).motions[0]
    assert one.num_frames == 4 and np.isfinite(one.joints).all()
    out = runtime.generate(["\ufeffa person walks", "a person\u200b jumps"],
                           seconds=np.float32(2.0), seed=2 ** 70, tokens=None)
    assert [m.text for m in out.motions] == ["a person walks", "a person\u200b jumps"]
    assert [m.num_frames for m in out.motions] == [40, 40]
    knobs = SamplingParams(timesteps=np.int64(3), gsample=np.bool_(True), cond_scale=np.float32(2))
    assert type(knobs.timesteps) is int and knobs.gsample is True and knobs.to_dict()
    assert runtime.generate("walk", tokens=np.array([49]), params=knobs).motions[0].num_frames \
        == 196


def test_clip_library_lines(momask_bundle, tmp_path):
    """A prompt-file line with ``1e308`` seconds (an OverflowError) or a NUL-only prompt is one
    line naming file and line, before anything is written; a BOM is not part of the prompt."""
    from exporter.clips import ClipsParams, make_clips, read_prompts

    params = ClipsParams(formats=("bvh",), device="cpu", threads=1)
    for line, match in (("walk | 1e308", r"p.txt:2: 1e\+308 s is inf frames"),
                        ("\x00\x00", r"p.txt:2: the prompt holds the control character"),
                        ("\u200b | 3", r"p.txt:2: the prompt is empty or invisible")):
        prompts = tmp_path / "p.txt"
        prompts.write_text(f"a person walks\n{line}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=match):
            make_clips(prompts, momask_bundle, tmp_path / "lib", params)
        assert not (tmp_path / "lib").exists()
    prompts.write_text("\ufeff# a comment\n\ufeffwave | 2\n", encoding="utf-8")
    assert [c.prompt for c in read_prompts(prompts)] == ["wave"]
