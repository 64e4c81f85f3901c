"""The README's command lines work as written: they parse with the real parser, stay inside
``runs/``, use only model sets an earlier README command made, and (slow) run end to end at
tiny size in a fresh directory."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shlex
import time
from pathlib import Path

import pytest

from hmu_core.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def readme_commands() -> list[list[str]]:
    """Every ``hmu ...`` line of the README's bash blocks (continuations joined, comments
    dropped), as argv lists without the leading ``hmu``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = re.sub(r"^\$\s*", "", line.split(" #", 1)[0].strip())
            if re.match(r"^(\.venv/bin/)?hmu\s", line):
                commands.append(shlex.split(line)[1:])
    return commands


COMMANDS = readme_commands()


def _id(argv: list[str]) -> str:
    return " ".join(a for a in argv[:3] if not a.startswith("-"))


def test_the_readme_has_commands_for_every_verb():
    verbs = {argv[0] for argv in COMMANDS}
    assert len(COMMANDS) >= 15
    assert verbs >= {"data", "concepts", "models", "train", "generate", "unlearn", "export",
                     "eval", "benchmark", "clips"}


@pytest.mark.parametrize("argv", COMMANDS, ids=[_id(a) for a in COMMANDS])
def test_readme_command_parses(argv, capsys):
    try:
        args = cli_main.build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"hmu {shlex.join(argv)} does not parse: {capsys.readouterr().err.strip()}"
                    f" (exit {exc.code})")
    assert callable(args.run)


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_readme_paths_stay_in_runs_and_inputs_are_made_first():
    """Following the README leaves nothing untracked outside the ignored runs/, and every
    input under runs/ (--model, --data, --vq, --bundle, --models NAME=DIR, ...) is a directory
    an earlier README command wrote."""
    assert "runs/" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    made: set[str] = set()
    for argv in COMMANDS:
        out = _flag(argv, "--out")
        if out is not None:
            assert out.startswith("runs/"), f"hmu {shlex.join(argv)} writes outside runs/"
        inputs = [a.split("=", 1)[-1] for i, a in enumerate(argv)
                  if argv[i - 1] != "--out" and a.split("=", 1)[-1].startswith("runs/")]
        for path in inputs:
            assert any(path == m or path.startswith(m + "/") for m in made), \
                f"hmu {shlex.join(argv)}: no earlier README command makes {path}"
        if out is not None:
            made.add(out.rstrip("/"))
    assert "runs/set" in made


def test_readme_prompt_file_ships():
    from exporter.clips import read_prompts

    clips = [argv for argv in COMMANDS if argv[0] == "clips"]
    assert clips
    for argv in clips:
        specs = read_prompts(ROOT / argv[1], seconds=4.0, seed=0)
        assert len(specs) >= 5
        assert len({s.seconds for s in specs}) > 1, "the sample shows per-line durations"


# What makes each README command tiny: flags appended, values replaced. The commands keep
# every flag the README gives; only budgets shrink.
_TINY_EXTRA = {
    ("train",): ["--max-iters", "2", "--batch-size", "8", "--no-progress"],
    ("unlearn", "lcr"): ["--repeats", "1", "--no-progress"],
    ("unlearn", "suppress"): ["--repeats", "1", "--max-lines", "16", "--r-grid", "0", "4",
                              "--search-seeds", "1", "--no-progress"],
    ("unlearn", "finetune"): ["--max-iters", "1", "--no-progress"],
    ("unlearn", "retrain"): ["--max-iters", "1", "--no-progress"],
    ("eval",): ["--repeats", "1", "--mm-captions", "0", "--batch-size", "3", "--timesteps", "2",
                "--no-progress"],
    ("benchmark",): ["--repeats", "1", "--mm-captions", "0", "--batch-size", "3",
                     "--single-batch-size", "3", "--timesteps", "2", "--no-progress"],
    ("generate",): ["--no-progress"],
    ("clips",): ["--no-progress"],
}
_TINY_VALUES = {"--size": "tiny", "--epochs": "1"}


def tiny(argv: list[str]) -> list[str]:
    """``argv`` with the budgets of a smoke run (same verbs, paths and concepts)."""
    out = []
    for i, arg in enumerate(argv):
        prev = argv[i - 1] if i else ""
        out.append(_TINY_VALUES.get(prev, arg))
    # The tiny set's val split holds no forget clip to search on (tests/unlearn runs the
    # searches on a set that has them); the smoke run takes a fixed r and adds no code.
    if argv[:2] == ["unlearn", "suppress"] and "auto" in argv:
        out[out.index("auto")] = "4"
    if argv[:2] == ["unlearn", "suppress"] and "--greedy" in argv:
        out[out.index("--greedy") + 1] = "0"
    if argv[0] == "benchmark":  # one r value, no other LCR sets
        start = out.index("--r-sweep") + 1
        end = next((j for j in range(start, len(out)) if out[j].startswith("-")), len(out))
        out[start:end] = ["4"]
    return out + _TINY_EXTRA.get(tuple(argv[:2]), _TINY_EXTRA.get((argv[0],), []))


def write_caption_subset(source: Path, dest: Path, every: int) -> None:
    """``dest`` laid out as ``source`` (``shared/data``): the corpus with every ``every``-th id
    of ``all.txt``, its checksum file, and the official splits cut to those ids. The smoke run
    imports a tenth of HumanML3D's captions (the real corpus import has its own tests)."""
    keep = set((source / "all.txt").read_text(encoding="utf-8").split()[::every])
    with gzip.open(source / "humanml3d_texts.jsonl.gz", "rt", encoding="utf-8") as lines:
        records = [line for line in lines if json.loads(line)["id"] in keep]
    raw = "".join(records).encode("utf-8")
    packed = gzip.compress(raw, mtime=0)
    dest.mkdir(parents=True)
    (dest / "humanml3d_texts.jsonl.gz").write_bytes(packed)
    (dest / "humanml3d_texts.json").write_text(json.dumps({
        "sha256_gz": hashlib.sha256(packed).hexdigest(),
        "sha256_uncompressed_jsonl": hashlib.sha256(raw).hexdigest()}), encoding="utf-8")
    for split in ("all", "train", "val", "test", "train_val"):
        ids = (source / f"{split}.txt").read_text(encoding="utf-8").split()
        (dest / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids if i in keep),
                                           encoding="utf-8")


@pytest.mark.slow(seconds=60)
def test_readme_walkthrough_runs_at_tiny_size(tmp_path, monkeypatch, capsys):
    """Every README command, in README order, in a fresh directory beside a ``shared/`` with a
    tenth of the real captions, with budgets cut to a smoke run: each exits 0 and nothing
    appears outside runs/."""
    if not (SHARED / "data" / "humanml3d_texts.jsonl.gz").is_file():
        pytest.skip("../shared/data/humanml3d_texts.jsonl.gz is not beside the repository")
    work = tmp_path / "clone"
    work.mkdir()
    write_caption_subset(SHARED / "data", tmp_path / "shared" / "data", every=10)
    (work / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    monkeypatch.chdir(work)
    for argv in COMMANDS:
        if "fbx" in (_flag(argv, "--formats") or ""):
            pytest.importorskip("bpy", reason="the README's clips line asks for FBX/GLB")
        started = time.perf_counter()
        code = cli_main.main(tiny(argv))
        captured = capsys.readouterr()
        with capsys.disabled():
            print(f"{time.perf_counter() - started:6.1f} s  hmu {shlex.join(tiny(argv))}")
        assert code == 0, f"hmu {shlex.join(tiny(argv))}: exit {code}: {captured.err[-2000:]}"
    assert sorted(p.name for p in work.iterdir()) == ["examples", "runs"]
    assert (work / "runs" / "library" / "index.json").is_file()
    assert (work / "runs" / "bench" / "benchmark.md").is_file()
