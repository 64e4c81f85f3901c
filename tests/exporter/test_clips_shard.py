"""``hmu clips --shard I/N`` and ``--merge``: N shard jobs give the files and index of one run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from exporter import clips
from hmu_core.cli import main as main_cli
from hmu_core.errors import ConfigError
from hmu_core.shard import Shard

PROMPTS = """\
a person waves | 2
a person jumps | 2.2 | 42
# skipped
a person walks forward || 5
a person sits down | 3
a person kicks | 2.4
"""


def _files(root: Path) -> dict[str, object]:
    """Every file of a library: bytes, or the arrays of an npz (its zip stamps times)."""
    out: dict[str, object] = {}
    for path in sorted(root.iterdir()):
        if path.suffix == ".npz":
            with np.load(path) as data:
                out[path.name] = {k: data[k].tolist() for k in data.files}
        else:
            out[path.name] = path.read_bytes()
    return out


def _argv(prompts: Path, bundle: Path, out: Path, *extra: str) -> list[str]:
    return ["clips", str(prompts), "--bundle", str(bundle), "--out", str(out), "--device",
            "cpu", "--formats", "bvh,npz", "--seed", "3", *extra]


def test_three_shards_and_a_merge_equal_one_run(momask_bundle, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPTS, encoding="utf-8")
    one, many = tmp_path / "one", tmp_path / "many"
    assert main_cli.main(_argv(prompts, momask_bundle, one)) == 0
    for i in (2, 0, 1):  # any order, as a scheduler runs them
        assert main_cli.main(_argv(prompts, momask_bundle, many, "--shard", f"{i}/3")) == 0
    shard0 = json.loads((many / "index.shard-0-of-3.json").read_text())
    assert [e["index"] for e in shard0["clips"]] == [0, 3]
    assert shard0["shard"] == {"index": 0, "count": 3}
    assert not (many / "index.json").exists()
    capsys.readouterr()
    assert main_cli.main(_argv(prompts, momask_bundle, many, "--merge")) == 0
    assert "5 clip(s) merged" in capsys.readouterr().out
    assert _files(many) == _files(one)  # same names, bytes, arrays; shard indexes removed
    assert len(json.loads((many / "index.json").read_text())["clips"]) == 5

    # A rerun shard resumes from the merged index: nothing to make.
    report = clips.make_clips(prompts, momask_bundle, many,
                              clips.ClipsParams(formats=("bvh", "npz"), device="cpu", seed=3),
                              shard=Shard(1, 3))
    assert (report.generated, len(report.skipped)) == ([], 2)


def test_merge_names_what_is_missing(momask_bundle, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPTS, encoding="utf-8")
    out = tmp_path / "lib"
    params = clips.ClipsParams(formats=("bvh",), device="cpu", seed=3)
    with pytest.raises(ConfigError, match="holds no shard index"):
        clips.merge_shards(prompts, momask_bundle, out, params)
    clips.make_clips(prompts, momask_bundle, out, params, shard=Shard(0, 2))
    with pytest.raises(ConfigError, match=r"shard\(s\) 1/2 have not run"):
        clips.merge_shards(prompts, momask_bundle, out, params)
    clips.make_clips(prompts, momask_bundle, out, params, shard=Shard(1, 2))
    (out / "002_a-person-walks-forward_s5.bvh").unlink()  # clip 2 belongs to shard 0
    with pytest.raises(ConfigError, match=r"prompts.txt:4: clip 002_a-person-walks-forward_s5 "
                                          r"is missing or out of date in shard 0/2"):
        clips.merge_shards(prompts, momask_bundle, out, params)
    assert not (out / "index.json").exists() and (out / "index.shard-1-of-2.json").exists()
    (out / "index.shard-0-of-3.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"several shard counts \(N = 2, 3\)"):
        clips.merge_shards(prompts, momask_bundle, out, params)
    (out / "index.shard-0-of-3.json").unlink()
    with pytest.raises(ConfigError, match="missing or out of date"):  # another format asked
        clips.merge_shards(prompts, momask_bundle, out, clips.ClipsParams(formats=("npz",)))


@pytest.mark.parametrize("text", ["3/3", "1", "1/-2", "a/b", "0/0"])
def test_bad_shard_exits_2(momask_bundle, tmp_path, text, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPTS, encoding="utf-8")
    assert main_cli.main(_argv(prompts, momask_bundle, tmp_path / "o", "--shard", text)) == 2
    assert "shard" in capsys.readouterr().err
