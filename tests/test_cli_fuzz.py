"""Property-based tests of the command line: whatever the arguments and prompt files, ``hmu``
parses them or refuses them with one line and exit code 2 (never a traceback), and a refused
run leaves no file behind."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.clips import parse_formats, parse_prompts
from hmu_core.cli import main as cli_main
from hmu_core.errors import ConfigError

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

VERBS = [["data", "synth"], ["data", "split"], ["data", "stats"], ["data", "import-captions"],
         ["models", "default"], ["concepts"], ["generate"], ["export"], ["clips"],
         ["unlearn", "lcr"], ["unlearn", "uce"], ["unlearn", "finetune"], ["train", "vq"],
         ["train", "mask"], ["eval"], ["benchmark"], ["demo"]]
FLAGS = ["--out", "--data", "--model", "--seed", "--seconds", "--device", "--concept",
         "--concepts", "--overwrite", "--no-progress", "--size", "--r", "--workers", "--split",
         "--formats", "--bundle", "--vq", "--evaluator", "--models", "--repeats", "--limit",
         "--toxic-share", "--text-encoder", "--mode", "--r-sweep", "-v", "--"]
VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1e308", "nan", "inf", "cuda", "gpu", "tiny", "", "runs/x",
                     "4294967296", "a.bvh", "violence", "x.toml", "3", "-", "--", "=", "\x00"]),
    st.text(max_size=12),
    st.integers(-2**70, 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
ARGV = st.tuples(st.sampled_from(VERBS),
                 st.lists(st.one_of(st.sampled_from(FLAGS), VALUES), max_size=10))


def hmu(argv: list[str], capsys) -> tuple[int, list[str]]:
    try:
        code = cli_main.main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


@FUZZ
@given(ARGV)
def test_any_argv_parses_or_is_one_usage_line(capsys, verb_and_rest):
    verb, rest = verb_and_rest
    parser = cli_main.build_parser()
    argv = [*verb, *rest]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert exc.code == 2 and len(lines) == 1 and lines[0].startswith("hmu"), (argv, lines)
        return
    assert callable(args.run)


@FUZZ
@given(seconds=VALUES, seed=VALUES, device=VALUES, prompt=st.text(max_size=40))
def test_generate_never_crashes_and_writes_nothing(capsys, seconds, seed, device, prompt):
    """With no model set every run must stop with exit 2; no value reaches a traceback."""
    work = Path(tempfile.mkdtemp(prefix="hmu-fuzz-"))
    try:
        code, lines = hmu(["generate", prompt or "x", "--model", str(work / "none"),
                           "--seconds", seconds, "--seed", seed, "--device", device,
                           "--out", str(work / "a.bvh")], capsys)
        assert code == 2 and len(lines) == 1, lines
        assert list(work.iterdir()) == []
    finally:
        shutil.rmtree(work)


PROMPT_LINES = st.lists(st.one_of(
    st.text(max_size=60),
    st.builds(lambda p, s, d: f"{p} | {s} | {d}", st.text(max_size=20), VALUES, VALUES),
    st.builds(lambda p, s: f"{p}|{s}", st.text(max_size=20), VALUES),
    st.sampled_from(["# comment", "", "   ", "|", "||", "a | | ", "\ufeffa person waves",
                     "a\x00b", "a person waves | 1e308", "a | 3 | 99999999999999999999"]),
), max_size=8)


@FUZZ
@given(PROMPT_LINES)
def test_prompt_files_parse_or_name_the_line(lines):
    text = "\n".join(lines)
    try:
        specs = parse_prompts(text, seconds=4.0, seed=0, source="p.txt")
    except ConfigError as exc:
        assert str(exc).startswith("p.txt") and "\n" not in str(exc)
        return
    assert specs and all(s.prompt and s.seconds > 0 and s.seed >= 0 for s in specs)
    assert [s.index for s in specs] == list(range(len(specs)))


@FUZZ
@given(lines=PROMPT_LINES, formats=st.sampled_from(["bvh", "bvh,npz", "npz"]),
       raw=st.binary(max_size=40))
def test_clips_with_any_prompt_file_stops_cleanly(capsys, lines, formats, raw):
    """Without a bundle every run must end in exit 2 with one line, however bad the file,
    and the library directory must not appear."""
    work = Path(tempfile.mkdtemp(prefix="hmu-fuzz-"))
    try:
        prompts = work / "prompts.txt"
        prompts.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + raw)
        code, err = hmu(["clips", str(prompts), "--bundle", str(work / "none"), "--out",
                         str(work / "lib"), "--formats", formats], capsys)
        assert code == 2 and len(err) == 1, err
        assert sorted(p.name for p in work.iterdir()) == ["prompts.txt"]
    finally:
        shutil.rmtree(work)


@FUZZ
@given(st.text(max_size=30))
def test_formats_parse_or_refuse(text):
    try:
        formats = parse_formats(text)
    except ConfigError:
        return
    assert formats and set(formats) <= {"bvh", "npz", "fbx", "glb"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from hmu_core.synth.generate import write_synthetic_dataset

    out = tmp_path_factory.mktemp("fuzz") / "data"
    write_synthetic_dataset(out, 24, seed=0, toxic_share=0.3)
    return out


CONCEPTS = st.lists(st.one_of(
    st.sampled_from(["violence", "kick", "punch", "weapons", "x.toml", "a.json", "kick:16",
                     "", "violence violence"]),
    st.text(max_size=10)), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(concepts=CONCEPTS, mode=st.sampled_from(["official", "word"]),
       splits=st.lists(st.sampled_from(["test", "train", "nope", "all", ""]), min_size=1,
                       max_size=3))
def test_data_split_succeeds_or_leaves_nothing(capsys, dataset, concepts, mode, splits):
    work = Path(tempfile.mkdtemp(prefix="hmu-fuzz-"))
    try:
        out = work / "new" / "splits"
        code, err = hmu(["data", "split", "--data", str(dataset), "--out", str(out),
                         "--mode", mode, "--concept", *concepts, "--splits", *splits], capsys)
        if code == 0:
            assert (out / "split_summary.json").is_file()
        else:
            assert code == 2 and len(err) == 1, err
            assert list(work.iterdir()) == []
    finally:
        shutil.rmtree(work)
