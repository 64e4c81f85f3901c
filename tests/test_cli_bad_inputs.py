"""Bad input on the command line: every case is one line on stderr and exit code 2, before any
work, and nothing is written or left behind.

Three tiers: values the parser refuses for every verb that takes them (seeds, devices,
durations, counts), checks that run before any work (outputs that are files, foreign
directories, unwritable places, missing datasets, durations out of the model's range, bad
prompt files, CUDA asked for without CUDA), and OS errors in the middle of a write (disk full,
read-only), which name the path and leave no temporary file.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from hmu_core import atomic
from hmu_core.cli import main as cli_main


def hmu(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Exit code and the non-empty stderr lines of ``hmu ARGV`` (parser exits included)."""
    try:
        code = cli_main.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def assert_one_line_exit_2(argv: list[str], capsys, *needles: str) -> str:
    code, lines = hmu(argv, capsys)
    assert code == 2, f"hmu {' '.join(map(str, argv))}: exit {code}, stderr {lines}"
    assert len(lines) == 1 and lines[0].startswith("hmu"), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ------------------------------------------------------------------------ parser-level values

DATA, MODEL, OUT = "runs/data", "runs/set", "runs/out"
"""Placeholder paths: the parser refuses the bad value before any of them is looked at."""

SEED_VERBS = {
    "data synth": ["data", "synth", "--out", OUT],
    "generate": ["generate", "a person walks", "--model", MODEL, "--out", "runs/a.bvh"],
    "clips": ["clips", "examples/prompts.txt", "--bundle", "b", "--out", OUT],
    **{f"unlearn {m}": ["unlearn", m, "--model", MODEL, "--out", OUT]
       + (["--data", DATA] if m in ("lcr", "finetune", "retrain") else [])
       for m in ("lcr", "uce", "rece", "finetune", "retrain")},
    **{f"train {k}": ["train", k, "--data", DATA, "--out", OUT]
       + (["--vq", "runs/vq"] if k in ("mask", "res", "bamm") else [])
       for k in ("vq", "mask", "res", "bamm", "length", "evaluator")},
    "eval": ["eval", "--model", MODEL, "--data", DATA, "--split", "forget", "--out", OUT],
    "benchmark": ["benchmark", "--data", DATA, "--evaluator", "e", "--models", "original=m",
                  "--out", OUT],
}
DEVICE_VERBS = {k: v for k, v in SEED_VERBS.items() if k != "data synth"}
BAD_SEEDS = ["-1", "4294967296", "99999999999999999999999", "abc", "", "1.5", "1e3", "0x10"]
BAD_DEVICES = ["gpu", "GPU", "cuda:0", "tpu", "", "mps", "cpu,cuda", "nvidia"]
BAD_SECONDS = ["1e308", "1e400", "inf", "-inf", "nan", "0", "-1", "3601", "abc", ""]
BAD_COUNTS = ["0", "-1", "x", "1.5"]


@pytest.mark.parametrize("value", BAD_SEEDS)
@pytest.mark.parametrize("verb", SEED_VERBS)
def test_bad_seed(verb, value, capsys):
    line = assert_one_line_exit_2([*SEED_VERBS[verb], "--seed", value], capsys, "--seed")
    assert "--help" in line


@pytest.mark.parametrize("value", BAD_DEVICES)
@pytest.mark.parametrize("verb", DEVICE_VERBS)
def test_bad_device(verb, value, capsys):
    line = assert_one_line_exit_2([*DEVICE_VERBS[verb], "--device", value], capsys,
                                  "--device")
    assert "auto, cpu or cuda" in line
    if value.lower() in ("gpu", "nvidia"):
        assert "an NVIDIA GPU is 'cuda'" in line


@pytest.mark.parametrize("value", BAD_SECONDS)
@pytest.mark.parametrize("verb", ["generate", "clips"])
def test_bad_seconds(verb, value, capsys):
    assert_one_line_exit_2([*SEED_VERBS[verb], "--seconds", value], capsys, "--seconds")


@pytest.mark.parametrize("value", BAD_COUNTS)
@pytest.mark.parametrize("flag", ["--r", "--limit", "--repeats", "--per-kind"])
def test_bad_demo_counts_are_refused_before_any_work(flag, value, tmp_path, capsys):
    out = tmp_path / "demo"
    assert_one_line_exit_2(["demo", "--out", out, flag, value], capsys, flag)
    assert not out.exists()


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_bad_synth_workers(value, capsys):
    assert_one_line_exit_2(["data", "synth", "--out", OUT, "--workers", value], capsys,
                           "--workers")


@pytest.mark.parametrize("argv", [
    ["data", "split"], ["data", "stats", "--out", OUT], ["data", "synth"],
    ["generate", "a person walks"], ["export", "--model", MODEL],
    ["clips", "p.txt", "--out", OUT], ["unlearn", "lcr", "--model", MODEL, "--out", OUT],
    ["models", "default"], ["eval", "--data", DATA], ["train", "vq", "--out", OUT],
    ["benchmark", "--data", DATA], ["concepts", "--bogus"], ["demo", "--size", "huge"],
    ["generate", "x", "--model", MODEL, "--out", "a.bvh", "--gpu"],
    ["nonsense"], [],
], ids=lambda argv: " ".join(argv) or "no verb")
def test_missing_or_unknown_arguments(argv, capsys):
    assert_one_line_exit_2(argv, capsys)


# ------------------------------------------------------------------------------ run-level


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A 24-clip synthetic dataset, every toxic family in it (about a second)."""
    from hmu_core.synth.generate import write_synthetic_dataset

    out = tmp_path_factory.mktemp("bad") / "data"
    write_synthetic_dataset(out, 24, seed=0, toxic_share=0.3)
    return out


@pytest.fixture
def places(tmp_path) -> dict[str, Path]:
    """A regular file, a user's directory (no hmu marker) and a fresh name, in an empty
    directory whose listing each test compares before and after."""
    regular = tmp_path / "notes.txt"
    regular.write_text("mine")
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"jpeg")
    return {"file": regular, "foreign": foreign, "new": tmp_path / "new"}


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def out_verbs(data: Path, out: Path) -> dict[str, list]:
    """Every verb that writes --out, with valid other arguments."""
    default = str(Path(atomic.__file__).parent / "assets" / "default_model")
    return {
        "data synth": ["data", "synth", "--size", "tiny", "--out", out],
        "data split": ["data", "split", "--data", data, "--out", out],
        "data stats": ["data", "stats", "--data", data, "--out", out],
        "data import-captions": ["data", "import-captions", "corpus.jsonl.gz", "--out", out],
        "models default": ["models", "default", "--out", out],
        "export": ["export", "--model", default, "--out", out],
        "clips": ["clips", "examples/prompts.txt", "--bundle", "b", "--out", out,
                  "--formats", "bvh"],
        "unlearn lcr": ["unlearn", "lcr", "--model", default, "--data", data, "--out", out],
        "unlearn uce": ["unlearn", "uce", "--model", default, "--out", out],
        "eval": ["eval", "--model", default, "--data", data, "--split", "forget", "--out",
                 out],
        "train vq": ["train", "vq", "--data", data, "--out", out],
        "benchmark": ["benchmark", "--data", data, "--evaluator", "e", "--models",
                      f"original={default}", "--out", out],
        "demo": ["demo", "--out", out],
    }


OUT_VERBS = list(out_verbs(Path(), Path()))
OVERWRITE_VERBS = ["data synth", "data import-captions", "models default", "export",
                   "unlearn lcr", "unlearn uce"]


@pytest.mark.parametrize("verb", OUT_VERBS)
def test_out_is_a_regular_file(verb, dataset, places, capsys, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    root = places["file"].parent
    before = listing(root)
    assert_one_line_exit_2(out_verbs(dataset, places["file"])[verb], capsys,
                           str(places["file"]))
    assert listing(root) == before and places["file"].read_text() == "mine"


@pytest.mark.parametrize("kind", ["file", "foreign"])
@pytest.mark.parametrize("verb", OVERWRITE_VERBS)
def test_overwrite_refuses_what_hmu_did_not_write(verb, kind, dataset, places, capsys):
    root = places["file"].parent
    before = listing(root)
    line = assert_one_line_exit_2([*out_verbs(dataset, places[kind])[verb], "--overwrite"],
                                  capsys, str(places[kind]))
    assert ("not written by hmu" in line) if kind == "foreign" else ("is a file" in line)
    assert listing(root) == before


@pytest.mark.parametrize("verb", ["data synth", "models default", "export", "unlearn uce"])
def test_existing_output_needs_overwrite(verb, dataset, places, capsys):
    root = places["file"].parent
    before = listing(root)
    assert_one_line_exit_2(out_verbs(dataset, places["foreign"])[verb], capsys,
                           "already exists")
    assert listing(root) == before


@pytest.mark.parametrize("verb", ["data synth", "data split", "data stats", "models default",
                                  "export", "unlearn uce", "demo", "train vq"])
@pytest.mark.parametrize("place", ["/proc/hmu-test-out", "/sys/hmu-test-out"])
def test_out_where_the_os_refuses_to_write(verb, place, dataset, capsys):
    """/proc and /sys refuse new entries even to root: the error names the path."""
    if not Path(place).parent.is_dir():
        pytest.skip(f"{Path(place).parent} is not mounted")
    line = assert_one_line_exit_2(out_verbs(dataset, Path(place))[verb], capsys, place)
    assert "Traceback" not in line and not Path(place).exists()


def test_generate_out_is_a_directory_or_unknown_suffix(tmp_path, capsys):
    (tmp_path / "x.bvh").mkdir()
    base = ["generate", "a person walks", "--model", MODEL, "--seconds", "3"]
    assert_one_line_exit_2([*base, "--out", tmp_path / "x.bvh"], capsys, "is a directory")
    assert_one_line_exit_2([*base, "--out", tmp_path / "x.txt"], capsys, "suffix")
    assert_one_line_exit_2([*base, "--out", tmp_path], capsys, "suffix")
    assert listing(tmp_path) == ["x.bvh"]


@pytest.mark.parametrize("seconds", ["0.5", "1.7", "9.9", "12", "3600"])
def test_generate_duration_outside_the_model_is_refused_before_loading(seconds, tmp_path,
                                                                       capsys):
    out = tmp_path / "a.bvh"
    assert_one_line_exit_2(["generate", "a person walks", "--model", tmp_path / "no-model",
                            "--seconds", seconds, "--out", out], capsys, "choose a duration")
    assert listing(tmp_path) == []


def test_generate_seed_range_covers_every_prompt(tmp_path, capsys):
    assert_one_line_exit_2(["generate", "a", "b", "--model", MODEL, "--seed", "4294967295",
                            "--out", tmp_path / "a.bvh"], capsys, "SEED + i")


@pytest.mark.parametrize("lines,needle", [
    ("a person waves | 1e308\n", "choose a duration"),
    ("a person waves | 1e309\n", "seconds"),
    ("a person waves | nan\n", "seconds"),
    ("a person waves | -inf\n", "seconds"),
    ("a person waves | 0\n", "seconds"),
    ("a person waves | -2\n", "seconds"),
    ("a person waves | 7200\n", "choose a duration"),
    ("a person waves | soon\n", "not a number"),
    ("a person waves | 3 | -1\n", "seed"),
    ("a person waves | 3 | 1.5\n", "seed"),
    ("a person waves | 3 | 7 | x\n", "fields"),
    ("| 3\n", "prompt is empty"),
    ("# only a comment\n\n", "no clips"),
    ("", "no clips"),
    ("a person waves " * 100 + "\n", "characters"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "long")
def test_clips_prompt_file_errors_name_the_line(lines, needle, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    has_clip = lines.strip() and not lines.startswith("#")
    prompts.write_text("a person walks\n" + lines if has_clip else lines, encoding="utf-8")
    out = tmp_path / "lib"
    line = assert_one_line_exit_2(["clips", prompts, "--bundle", tmp_path / "no-bundle",
                                   "--out", out, "--formats", "bvh"], capsys, needle)
    if has_clip:
        assert f"{prompts}:2" in line
    assert not out.exists()


@pytest.mark.parametrize("content", [b"\xff\xfe a p\x00e\x00r\x00", b"caf\xe9 au lait\n"])
def test_clips_prompt_file_not_utf8(content, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes(content)
    assert_one_line_exit_2(["clips", prompts, "--bundle", "b", "--out", tmp_path / "lib"],
                           capsys, "UTF-8")
    assert listing(tmp_path) == ["prompts.txt"]


@pytest.mark.parametrize("name", ["missing.txt", "."])
def test_clips_prompt_file_missing_or_a_directory(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_exit_2(["clips", name, "--bundle", "b", "--out", "lib"], capsys)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("formats", ["", "bvh,bvh", "obj", "bvh,,npz"])
def test_clips_bad_formats(formats, tmp_path, capsys):
    assert_one_line_exit_2(["clips", "examples/prompts.txt", "--bundle", "b", "--out",
                            tmp_path / "lib", "--formats", formats], capsys)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("verb", ["data split", "data stats", "train vq", "eval", "benchmark"])
@pytest.mark.parametrize("kind", ["missing", "file"])
def test_data_that_is_not_a_directory(verb, kind, places, capsys):
    data = places["new"] if kind == "missing" else places["file"]
    out = places["file"].parent / "out"
    root = places["file"].parent
    before = listing(root)
    assert_one_line_exit_2(out_verbs(data, out)[verb], capsys, "--data", "not a directory")
    assert listing(root) == before


def test_split_with_two_datasets_or_none(dataset, tmp_path, capsys):
    assert_one_line_exit_2(["data", "split", str(dataset), "--data", tmp_path, "--out",
                            tmp_path / "s"], capsys, "two datasets")
    assert_one_line_exit_2(["data", "stats", "--out", tmp_path / "s"], capsys, "--data")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("args", [["--splits", "nope"], ["--splits", "test", "nope"],
                                  ["--concept", "nonexistent"], ["--concept", "x.toml"],
                                  ["--concept", "kick", "punch", "--union-name", "kick"]])
def test_failed_split_leaves_no_directory(args, dataset, tmp_path, capsys):
    out = tmp_path / "new" / "splits"
    assert_one_line_exit_2(["data", "split", "--data", dataset, "--out", out, *args], capsys)
    assert listing(tmp_path) == []


def test_failed_stats_leaves_no_directory(dataset, tmp_path, capsys):
    out = tmp_path / "new" / "stats"
    assert_one_line_exit_2(["data", "stats", "--data", dataset, "--split", "nope", "--out",
                            out], capsys, "nope")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("share", ["1.5", "-0.1", "nan", "inf"])
def test_synth_bad_toxic_share(share, tmp_path, capsys):
    assert_one_line_exit_2(["data", "synth", "--out", tmp_path / "d", "--toxic-share", share],
                           capsys, "--toxic-share")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("r", ["256", "1000", "99999999999"])
def test_demo_r_beyond_the_codebook_is_refused_before_any_work(r, tmp_path, capsys):
    out = tmp_path / "demo"
    assert_one_line_exit_2(["demo", "--out", out, "--r", r], capsys, "--r", "codebook")
    assert not out.exists()


@pytest.mark.parametrize("argv,needle", [
    (["concepts", "missing.toml"], "does not exist"),
    (["concepts", "notes.txt"], ".toml or .json"),
    (["concepts", "bad.toml"], "cannot be parsed"),
    (["concepts", "empty.json"], "no concept table"),
    (["concepts", "noname.json"], "keywords"),
])
def test_concepts_bad_files(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text("[concepts.fight\nkeywords = [")
    (tmp_path / "empty.json").write_text("{}")
    (tmp_path / "noname.json").write_text('{"fight": []}')
    assert_one_line_exit_2(argv, capsys, needle)


def test_concepts_lists_builtins_with_keywords(capsys, tmp_path):
    code, _ = hmu(["concepts"], capsys)
    assert code == 0
    (tmp_path / "mine.json").write_text('{"concepts": {"fight": ["brawl", "scuffle"]}}')
    assert cli_main.main(["concepts"]) == 0
    out = capsys.readouterr().out
    assert "violence_motionx" in out and "kick, punch, hit" in out
    assert cli_main.main(["concepts", str(tmp_path / "mine.json")]) == 0
    assert capsys.readouterr().out.split() == ["fight", "brawl,", "scuffle"]


# ------------------------------------------------------------------------- CUDA asked for


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif("_has_cuda()", reason="this machine has CUDA: --device cuda is valid")
@pytest.mark.parametrize("verb", ["generate", "unlearn uce", "eval", "train vq", "benchmark",
                                  "unlearn lcr"])
def test_cuda_without_cuda_torch_verbs(verb, dataset, tmp_path, capsys):
    argv = {**out_verbs(dataset, tmp_path / "out"),
            "generate": ["generate", "a person walks", "--model", MODEL, "--seconds", "3",
                         "--out", tmp_path / "a.bvh"]}[verb]
    assert_one_line_exit_2([*argv, "--device", "cuda"], capsys, "CUDA")
    assert listing(tmp_path) == []


def test_cuda_without_a_cuda_onnxruntime(tmp_path, capsys):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider")
    assert_one_line_exit_2(["clips", "examples/prompts.txt", "--bundle", "b", "--out",
                            tmp_path / "lib", "--device", "cuda"], capsys, "CUDA provider")
    assert listing(tmp_path) == []


# ------------------------------------------------------------------ OS errors mid-write


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO])
def test_disk_errors_while_writing_a_model_set(code, tmp_path, capsys, monkeypatch):
    real_replace = os.replace

    def failing(src, dst):
        if Path(dst).name == "set":
            raise OSError(code, os.strerror(code), str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing)
    line = assert_one_line_exit_2(["models", "default", "--out", tmp_path / "set"], capsys,
                                  f"{tmp_path / 'set'}: {os.strerror(code)}")
    assert ".hmu-" not in line
    assert listing(tmp_path) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_disk_full_in_the_middle_of_data_synth(code, tmp_path, capsys, monkeypatch):
    from hmu_core.synth import generate

    calls = []

    def failing(path, array):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(code, os.strerror(code))

    monkeypatch.setattr(generate, "_save_npy", failing)
    assert_one_line_exit_2(["data", "synth", "--size", "tiny", "--workers", "1",
                            "--no-progress", "--out", tmp_path / "d"], capsys,
                           str(tmp_path / "d"), os.strerror(code))
    assert listing(tmp_path) == []


@pytest.mark.parametrize("suffix", [".bvh", ".npz"])
def test_disk_full_while_writing_a_generated_clip(suffix, tmp_path, capsys, monkeypatch):
    real_replace = os.replace

    def failing(src, dst):
        if str(dst).endswith(suffix):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing)
    out = tmp_path / f"clip{suffix}"
    default = Path(atomic.__file__).parent / "assets" / "default_model"
    assert_one_line_exit_2(["generate", "a person walks", "--model", default, "--seconds", "2",
                            "--no-progress", "--out", out], capsys,
                           f"{out}: No space left on device")
    assert listing(tmp_path) == []


def test_stale_temporary_files_beside_a_generate_output_are_swept(tmp_path, capsys):
    """--out of a file verb also clears what a killed run left beside it (then fails here on
    the missing model, which writes nothing)."""
    stale = tmp_path / ".clip.bvh.hmu-999999999-abc.tmp"
    stale.write_text("half")
    code, _ = hmu(["generate", "a", "--model", tmp_path / "none", "--seconds", "3", "--out",
                   tmp_path / "clip.bvh"], capsys)
    assert code == 2
    assert listing(tmp_path) == []


def test_clips_prompt_file_with_a_bom(tmp_path):
    """Windows editors start UTF-8 files with a BOM: it must not become part of the prompt
    recorded in index.json."""
    from exporter.clips import read_prompts

    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes("a person waves | 3\n".encode("utf-8-sig"))
    (spec,) = read_prompts(prompts, seconds=4.0, seed=0)
    assert spec.prompt == "a person waves" and spec.seconds == 3.0
