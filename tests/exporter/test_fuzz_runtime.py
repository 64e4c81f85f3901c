"""Property-based fuzzing of the runtime (Hypothesis): prompts, durations, token lengths, seeds,
sampling knobs, prompt files and manifests.

The property everywhere: an input gives a result or an ``HmuError`` (one line), never another
exception, and never leaves a file behind. One tiny bundle is exported per session
(``momask_bundle``); examples are few and deadlines off, so the file runs in seconds.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from exporter.clips import parse_prompts  # noqa: E402
from exporter.runtime import Generator, read_bundle  # noqa: E402
from hmu_core.errors import HmuError  # noqa: E402
from hmu_core.sampling.params import SamplingParams  # noqa: E402

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 80, 2 ** 80),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                    st.binary(max_size=8))
# Text over all of Unicode, control characters, surrogates and zero-width marks included.
any_text = st.text(st.characters(codec=None, categories=None), max_size=40) | st.text(
    st.sampled_from("\x00\ufeff\u200b\u200d\u3164\u0301 a\t\n\x1b\udc80."), max_size=12) \
    | st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=30)


@pytest.fixture(scope="module")
def runtime(momask_bundle):
    return Generator(momask_bundle, device="cpu", threads=1)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _generate(runtime: Generator, prompts, **kwargs) -> None:
    """Run one request; the property: a motion per prompt or one HmuError line."""
    try:
        out = runtime.generate(prompts, **kwargs)
    except HmuError as exc:
        assert str(exc) and "\n" not in str(exc)
        event(f"refused: {type(exc).__name__}")  # --hypothesis-show-statistics
        return
    event("motion")
    assert len(out.motions) == len(out.tokens) >= 1
    for motion in out.motions:
        assert motion.num_frames >= 4 and math.isfinite(float(motion.joints.sum()))
        assert not motion.text.startswith("\ufeff")


@FUZZ
@given(prompts=any_text | st.lists(any_text | scalars, max_size=3) | scalars)
def test_prompts(runtime, momask_bundle, prompts):
    before = _files(momask_bundle)
    _generate(runtime, prompts, seconds=2.0, params=SamplingParams(timesteps=2))
    assert _files(momask_bundle) == before


@FUZZ
@given(lengths=st.tuples(scalars | st.lists(scalars, max_size=3) | st.floats(0.5, 12.0),
                         st.none())
       | st.tuples(st.none(), scalars | st.lists(st.integers(-3, 60) | scalars, max_size=3))
       | st.tuples(scalars, scalars))
def test_durations_and_token_lengths(runtime, lengths):
    seconds, tokens = lengths
    _generate(runtime, "a person walks", seconds=seconds, tokens=tokens,
              params=SamplingParams(timesteps=2))


@FUZZ
@given(seed=scalars | st.integers(0, 2 ** 64),
       seeds=st.none() | st.none() | scalars
       | st.lists(scalars | st.integers(0, 2 ** 70), min_size=1, max_size=1))
def test_seeds(runtime, seed, seeds):
    _generate(runtime, "a person walks", seconds=2.0, seed=seed, seeds=seeds,
              params=SamplingParams(timesteps=2))


knob_values = scalars | st.floats(-2, 200) | st.integers(-3, 120)
KNOBS = [f.name for f in SamplingParams.__dataclass_fields__.values()]


sane_knobs = st.fixed_dictionaries({}, optional={
    "timesteps": st.integers(1, 100), "cond_scale": st.floats(0, 100),
    "res_cond_scale": st.floats(0, 100), "bamm_refine_cond_scale": st.floats(0, 100),
    "topk_filter_thres": st.floats(0, 0.999), "res_topk_filter_thres": st.floats(0, 0.999),
    "temperature": st.floats(1e-3, 100), "res_temperature": st.floats(1e-3, 100),
    "gsample": st.booleans(), "force_mask": st.booleans(), "num_res_layers": st.integers(-1, 2)})


@FUZZ
@given(knobs=st.dictionaries(st.sampled_from(KNOBS), knob_values, max_size=4) | sane_knobs)
def test_sampling_knobs(runtime, knobs):
    try:
        params = SamplingParams(**knobs)
    except HmuError:
        return
    json.dumps(params.to_dict())  # provenance stays JSON
    # Keep it quick: the knob under test is what varies, not the step count.
    small = SamplingParams(**{**params.to_dict(), "timesteps": min(params.timesteps, 3)})
    _generate(runtime, "a person walks", seconds=2.0, params=small)


prompt_files = st.text(st.characters(codec=None, categories=None), max_size=200) | st.lists(
    st.sampled_from(["a person walks", "#c", "", " | 3", "x | | 1", "jump | 1e308",
                     "wave | nan", "run | 3 | -1", "\ufeffbow | 2 | 7", "\x00 | 2", "sit | 2.5",
                     "a|b|c|d", "\u200b", "kick | 4 | 99999999999999999999", "hop | 12"]),
    max_size=6).map("\n".join)


@FUZZ
@given(text=prompt_files)
def test_prompt_files(text):
    try:
        specs = parse_prompts(text, source="fuzz.txt")
    except HmuError as exc:
        assert str(exc).startswith("fuzz.txt") and "\n" not in str(exc)
        return
    for spec in specs:
        assert spec.prompt and spec.seconds > 0 and spec.seed >= 0
        assert not spec.prompt.startswith("\ufeff")


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=prompt_files)
def test_clip_libraries(momask_bundle, tmp_path, text):
    """A prompt file -> a library (index.json and one BVH per clip, nothing temporary) or one
    error line naming the file, with nothing written."""
    from exporter.clips import ClipsParams, make_clips

    work = Path(tempfile.mkdtemp(dir=tmp_path))
    prompts, out = work / "p.txt", work / "lib"
    prompts.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        report = make_clips(prompts, momask_bundle, out,
                            ClipsParams(formats=("bvh",), device="cpu", threads=1))
    except HmuError as exc:
        assert "\n" not in str(exc) and str(prompts) in str(exc)
        assert not out.exists()
        event("refused")
        return
    event("library")
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["index.json", *(e["files"]["bvh"] for e in index["clips"])])
    assert len(report.generated) == len(index["clips"]) >= 1


# -- manifests -------------------------------------------------------------------------------

def _paths(node, prefix=()):
    """Every (path, value) in a JSON tree."""
    yield prefix, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=6)


@pytest.fixture(scope="module")
def scratch(momask_bundle, tmp_path_factory) -> tuple[Path, dict, list]:
    root = tmp_path_factory.mktemp("fuzz") / "bundle"
    shutil.copytree(momask_bundle, root)
    manifest = json.loads((root / "manifest.json").read_text())
    return root, manifest, [p for p, _ in _paths(manifest) if p and p[0] != "files"]


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_manifests(scratch, data):
    """Any manifest entry replaced by any JSON value (or removed): the bundle loads and makes a
    motion, or one BundleError/ConfigError line; the bundle's files are untouched."""
    root, original, paths = scratch
    path = data.draw(st.sampled_from(paths), label="path")
    manifest = json.loads(json.dumps(original))
    node = manifest
    for key in path[:-1]:
        node = node[key]
    if data.draw(st.booleans(), label="remove") and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = data.draw(json_values, label="value")
    (root / "manifest.json").write_text(json.dumps(manifest))
    before = _files(root)
    try:
        runtime = Generator(root, device="cpu", threads=1)
        _generate(runtime, "a person walks", seconds=2.0, params=SamplingParams(timesteps=2))
    except HmuError as exc:
        assert str(exc) and "\n" not in str(exc)
        event(f"bundle refused: {type(exc).__name__}")
    finally:
        (root / "manifest.json").write_text(json.dumps(original))
    assert _files(root) == before
    assert read_bundle(root).digest  # restored
