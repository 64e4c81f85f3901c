"""``hmu generate``: argument mapping, output naming, exit codes, one end-to-end run."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from hmu_core.cli import common
from hmu_core.cli import generate as generate_cli
from hmu_core.cli import main as cli_main
from hmu_core.errors import ConfigError
from hmu_core.models import build
from hmu_core.models.checkpoints import save_model_dir
from hmu_core.sampling.params import SamplingParams


def _args(*extra: str):
    return cli_main.build_parser().parse_args(["generate", "a person jumps twice", *extra])


def test_arguments_map_to_sampling_params_and_parts(tmp_path):
    args = _args("--model", "set", "--seconds", "4", "--seed", "3", "--out", "clip.bvh")
    assert common.sampling_params(args) == SamplingParams()
    assert (args.seconds, args.seed, args.prompts) == (4.0, 3, ["a person jumps twice"])
    args = _args("--vq", "v", "--trans", "t", "--res", "r", "--length-estimator", "l",
                 "--text-encoder", "clip:/w.pt", "--out", "x.gif", "--timesteps", "18",
                 "--cond-scale", "2.5", "--res-cond-scale", "6", "--topk-filter-thres", "0.5",
                 "--temperature", "0.7", "--gumbel", "--res-layers", "0")
    assert common.sampling_params(args) == SamplingParams(
        timesteps=18, cond_scale=2.5, res_cond_scale=6.0, topk_filter_thres=0.5,
        temperature=0.7, gsample=True, num_res_layers=0)
    assert (str(args.vq), str(args.trans), str(args.res), str(args.length_estimator),
            args.text_encoder) == ("v", "t", "r", "l", "clip:/w.pt")


def test_output_paths(tmp_path):
    out = tmp_path / "clip.bvh"
    assert generate_cli.output_paths(out, 1) == [out]
    assert [p.name for p in generate_cli.output_paths(out, 2)] == ["clip_00.bvh", "clip_01.bvh"]
    assert generate_cli.output_paths(tmp_path / "a.mp4", 3) == [tmp_path / "a.mp4"]
    with pytest.raises(ConfigError):
        generate_cli.output_paths(tmp_path / "a.fbx", 1)


@pytest.mark.parametrize("argv", [
    ["--model", "{tmp}/missing", "--out", "{tmp}/x.bvh"],
    ["--model", "{tmp}", "--out", "{tmp}/x.bvh"],  # empty dir: no vq/
    ["--model", "{tmp}", "--out", "{tmp}/x.txt"],
    ["--out", "{tmp}/x.bvh"],
    ["--model", "{tmp}", "--out", "{tmp}/x.bvh", "--temperature", "nan"],
])
def test_bad_requests_exit_2_with_one_line(tmp_path, capsys, argv):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert cli_main.main(["generate", "walk", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hmu: error: ")


class HashEncoder:
    name, dim = "test-hash", 8

    def encode(self, texts):
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dim)
                for t in texts]
        return torch.from_numpy(np.stack(rows).astype(np.float32))


def test_end_to_end_bvh_and_npz(tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    common = dict(code_dim=8, cond_mode="text", latent_dim=16, ff_size=32, num_layers=1,
                  num_heads=2, dropout=0.1, clip_dim=8, cond_drop_prob=0.1,
                  clip_version="ViT-B/32", num_tokens=16)
    vq = build("rvqvae", dict(
        num_quantizers=2, shared_codebook=False, quantize_dropout_prob=0.2, mu=0.99,
        input_width=263, nb_code=16, code_dim=8, output_emb_width=8, down_t=2, stride_t=2,
        width=16, depth=1, dilation_growth_rate=3, activation="relu", norm=None))
    model_dir = tmp_path / "set"
    save_model_dir(model_dir / "vq", "rvqvae", vq, mean=np.zeros(263), std=np.ones(263))
    save_model_dir(model_dir / "trans", "mask_transformer", build("mask_transformer", common),
                   opt_updates={"clip_dim": 8})
    monkeypatch.setattr("hmu_core.models.generate.load_text_encoder", lambda spec: HashEncoder())

    out = tmp_path / "clip.bvh"
    argv = ["generate", "walk", "run", "--model", str(model_dir), "--seconds", "2",
            "--out", str(out)]
    assert cli_main.main(argv) == 0
    bvh = [(tmp_path / f"clip_0{i}.bvh").read_text() for i in range(2)]
    assert all(t.startswith("HIERARCHY") and "Frames: 40" in t for t in bvh)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "seed 1" in lines[1] and "40 frames" in lines[0]

    npz = tmp_path / "one.npz"
    assert cli_main.main(["generate", "walk", "--model", str(model_dir), "--seconds", "2",
                          "--seed", "1", "--out", str(npz)]) == 0
    with np.load(npz) as data:
        assert data["poses"].shape[0] == 40 and float(data["mocap_frame_rate"]) == 20.0
    # No length estimator in this set and no --seconds: a clear error, exit 2.
    assert cli_main.main(["generate", "walk", "--model", str(model_dir), "--out", str(npz)]) == 2
