"""``hmu clips``: prompt-file syntax, a four-format library from a real bundle, resume, errors,
no leftovers in Blender, and the torch-free boundary."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import bpy
import numpy as np
import pytest

from exporter import clips
from exporter.runtime import read_bundle
from exporter.scene import formats, rig
from hmu_core.cli import main as main_cli
from hmu_core.errors import ConfigError
from hmu_core.motion.amass import read_amass_npz

pytestmark = pytest.mark.blender

REPO = Path(__file__).resolve().parents[2]
PROMPTS = """\
# a tiny library
a person waves with both hands | 2

a person jumps | 2.2 | 42
  a person walks forward || 5
"""


def hmu(argv: list[str], monkeypatch) -> int:
    """``hmu ARGV`` through the real entry point."""
    del monkeypatch
    return main_cli.main(argv)


def test_prompt_syntax():
    specs = clips.parse_prompts(PROMPTS, seconds=4.0, seed=10, source="p.txt")
    got = [(s.index, s.line, s.prompt, s.seconds, s.seed) for s in specs]
    assert got == [(0, 2, "a person waves with both hands", 2.0, 10),
                   (1, 4, "a person jumps", 2.2, 42),
                   (2, 5, "a person walks forward", 4.0, 5)]
    assert specs[0].stem == "000_a-person-waves-with-both-hands_s10"
    assert clips.slugify("  Über-Kick!! ") == "ber-kick" and clips.slugify("!!") == "clip"
    assert len(clips.slugify("walk " * 30)) <= clips.SLUG_CHARS


@pytest.mark.parametrize(("text", "match"), [
    ("ok\n | 2\n", r"p.txt:2: the prompt is empty"),
    ("ok\n\n# c\nwalk | two\n", r"p.txt:4: seconds 'two' is not a number"),
    ("walk | -1\n", r"p.txt:1: seconds must be a number > 0"),
    ("walk | 2 | -3\n", r"p.txt:1: seed '-3' is not an integer"),
    ("a | b | c | d\n", r"p.txt:1: 4 '\|'-separated fields"),
    ("# only comments\n\n", r"p.txt has no clips"),
])
def test_prompt_errors_name_the_line(text, match):
    with pytest.raises(ConfigError, match=match):
        clips.parse_prompts(text, source="p.txt")


def test_formats_are_checked():
    assert clips.parse_formats("BVH, glb") == ("bvh", "glb")
    with pytest.raises(ConfigError, match="unknown"):
        clips.parse_formats("bvh,obj")
    with pytest.raises(ConfigError, match="repeat"):
        clips.parse_formats("bvh,bvh")


def _data_counts() -> dict[str, int]:
    return {k: len(getattr(bpy.data, k)) for k in
            ("objects", "meshes", "armatures", "materials", "actions", "scenes", "collections")}


def test_library_end_to_end_and_resume(default_bundle, tmp_path, monkeypatch, capsys, world):
    prompts, out = tmp_path / "prompts.txt", tmp_path / "lib"
    prompts.write_text(PROMPTS, encoding="utf-8")
    argv = ["clips", str(prompts), "--bundle", str(default_bundle), "--out", str(out),
            "--device", "cpu",
            "--formats", "bvh,npz,fbx,glb", "--seed", "10"]
    before = _data_counts()
    assert hmu(argv, monkeypatch) == 0
    assert _data_counts() == before  # the scratch scenes left nothing behind
    assert "3 clip(s) generated, 0 skipped" in capsys.readouterr().out

    index = json.loads((out / "index.json").read_text())
    assert index["format"] == "hmu-clips"
    assert index["bundle"]["sha256"] == read_bundle(default_bundle).digest
    entries = index["clips"]
    assert [(e["prompt"], e["seed"], e["seconds"]) for e in entries] == [
        ("a person waves with both hands", 10, 2.0), ("a person jumps", 42, 2.2),
        ("a person walks forward", 5, 4.0)]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["index.json", *(f for e in entries for f in e["files"].values())])
    assert len(names) == 1 + 3 * 4  # nothing temporary left
    first = entries[0]
    assert first["frames"] == 40 and first["fps"] == 20.0 and first["line"] == 2
    assert first["bundle_sha256"] == index["bundle"]["sha256"] and "unlearning" in first

    # The npz, BVH and GLB of a clip hold the same motion.
    motion = read_amass_npz(out / first["files"]["npz"])
    assert motion.num_frames == 40 and motion.text == first["prompt"]
    assert motion.provenance["bundle_sha256"] == first["bundle_sha256"]
    bvh = (out / first["files"]["bvh"]).read_text()
    assert "Frames: 40" in bvh and "Frame Time: 0.05000000" in bvh
    glb = formats.import_armature(out / first["files"]["glb"])
    got = rig.world_joints(glb, np.arange(40) + 1.0)
    np.testing.assert_allclose(got, world(motion.smpl_pose().joints()), atol=1e-3)

    # Resume: nothing to do.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix != ".json"}
    assert hmu(argv, monkeypatch) == 0
    assert "0 clip(s) generated, 3 skipped" in capsys.readouterr().out
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix != ".json"}

    # A deleted file regenerates its clip (the same motion: seeded), and only that clip.
    kept = np.load(out / entries[1]["files"]["npz"])["joints"]
    (out / entries[1]["files"]["npz"]).unlink()
    report = clips.make_clips(prompts, default_bundle, out,
                              clips.ClipsParams(device="cpu", seed=10))
    assert (report.generated, len(report.skipped)) == ([Path(entries[1]["files"]["npz"]).stem], 2)
    np.testing.assert_array_equal(np.load(out / entries[1]["files"]["npz"])["joints"], kept)

    # An edited line regenerates that clip under its new name.
    prompts.write_text(PROMPTS.replace("a person jumps |", "a person jumps high |"))
    report = clips.make_clips(prompts, default_bundle, out,
                              clips.ClipsParams(device="cpu", seed=10))
    assert report.generated == ["001_a-person-jumps-high_s42"] and len(report.skipped) == 2
    index = json.loads((out / "index.json").read_text())
    assert [e["prompt"] for e in index["clips"]][1] == "a person jumps high"
    assert (out / "001_a-person-jumps-high_s42.glb").is_file()

    # Feet are planted by default (recorded per clip); --no-foot-cleanup remakes every clip.
    assert all(e["foot_cleanup"] is True for e in index["clips"])
    assert motion.smpl_pose().joints()[:, [7, 8, 10, 11], 1].min() >= -1e-4
    assert hmu([*argv[:-4], "--formats", "npz", "--seed", "10", "--no-foot-cleanup"],
               monkeypatch) == 0
    assert "3 clip(s) generated, 0 skipped" in capsys.readouterr().out
    index = json.loads((out / "index.json").read_text())
    assert all(e["foot_cleanup"] is False for e in index["clips"])


def test_bad_prompt_file_and_bad_bundle_exit_2(default_bundle, tmp_path, monkeypatch, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a person waves\n# fine\na person jumps | 1e9\n", encoding="utf-8")
    base = ["clips", str(prompts), "--out", str(tmp_path / "lib"), "--formats", "bvh"]
    assert hmu([*base, "--bundle", str(default_bundle)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert f"{prompts}:3:" in err and "choose a duration in range" in err
    assert not (tmp_path / "lib" / "index.json").exists()

    prompts.write_text("a person waves | soon\n", encoding="utf-8")
    assert hmu([*base, "--bundle", str(default_bundle)], monkeypatch) == 2
    assert f"{prompts}:1: seconds 'soon' is not a number" in capsys.readouterr().err

    prompts.write_text("a person waves\n", encoding="utf-8")
    assert hmu([*base, "--bundle", str(tmp_path / "missing")], monkeypatch) == 2
    assert "hmu: error:" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    assert hmu([*base, "--bundle", str(broken)], monkeypatch) == 2
    assert "manifest" in capsys.readouterr().err


_TORCH_FREE = textwrap.dedent("""
    import sys
    sys.modules["torch"] = None  # "import torch" now fails
    sys.modules["bpy"] = None    # and so does bpy: bvh/npz must not need it
    import argparse, contextlib, io
    from hmu_core.cli import clips as cli
    parser = argparse.ArgumentParser(prog="hmu")
    cli.add_parser(parser.add_subparsers())
    with contextlib.redirect_stdout(io.StringIO()) as text, contextlib.suppress(SystemExit):
        parser.parse_args(["clips", "--help"])
    assert "prompt text[ | seconds[ | seed]]" in text.getvalue()
    from exporter.clips import ClipsParams, make_clips
    from hmu_core.errors import ConfigError
    bundle, out = sys.argv[1], sys.argv[2]
    with open(out + ".txt", "w") as f:
        f.write("a person waves | 2\\n")
    report = make_clips(out + ".txt", bundle, out, ClipsParams(formats=("bvh", "npz"),
                                                                device="cpu"))
    assert len(report.generated) == 1
    try:
        make_clips(out + ".txt", bundle, out, ClipsParams(formats=("glb",), device="cpu"))
    except ConfigError as exc:
        assert "pip install bpy" in str(exc), exc
    else:
        raise AssertionError("glb without bpy did not raise")
    print("OK")
""")


def test_cli_and_library_work_without_torch(default_bundle, tmp_path):
    proc = subprocess.run([sys.executable, "-c", _TORCH_FREE, str(default_bundle),
                           str(tmp_path / "lib")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-2000:]
