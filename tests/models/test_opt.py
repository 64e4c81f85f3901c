"""opt.txt: official parsing rules, typed configs, and byte-exact round trips."""

from __future__ import annotations

import logging

import pytest

from hmu_core.errors import ConfigError
from hmu_core.models.opt import (
    config_from_opt,
    official_namespace,
    parse_opt_value,
    read_opt,
    render_opt,
    write_opt,
)
from hmu_core.models.rvq import RVQVAEConfig

# Released-style VQ opt.txt, keys from reference/momask.md §1.1 plus the bookkeeping keys
# every official run writes (name, checkpoints_dir, gpu_id, is_train, is_continue).
RELEASED_VQ_ITEMS = {
    "batch_size": "256", "checkpoints_dir": "./checkpoints", "code_dim": "512",
    "commit": "0.02", "dataset_name": "t2m", "depth": "3", "dilation_growth_rate": "3",
    "down_t": "2", "eval_every_e": "1", "feat_bias": "5", "gamma": "0.05", "gpu_id": "0",
    "is_continue": "False", "is_train": "True", "log_every": "10", "loss_vel": "0.5",
    "lr": "0.0002", "lr_scheduler": "[150000, 250000]", "max_epoch": "50", "mu": "0.99",
    "name": "rvq_nq6_dc512_nc512_noshare_qdp0.2", "nb_code": "512", "num_quantizers": "6",
    "output_emb_width": "512", "quantize_dropout_prob": "0.2", "recons_loss": "l1_smooth",
    "save_every_e": "2", "save_latest": "500", "shared_codebook": "False", "stride_t": "2",
    "vq_act": "relu", "vq_norm": "None", "warm_up_iter": "2000", "weight_decay": "0.0",
    "width": "512", "window_size": "64",
}
RELEASED_VQ_TEXT = (
    "------------ Options -------------\n"
    + "".join(f"{k}: {RELEASED_VQ_ITEMS[k]}\n" for k in sorted(RELEASED_VQ_ITEMS))
    + "-------------- End ----------------\n"
)


def official_get_opt(text: str) -> dict:
    """The official reader's loop (utils/get_opt.py), restated to prove it reads our files."""
    skip = ("-------------- End ----------------", "------------ Options -------------", "\n")
    out = {}
    for line in text.splitlines(keepends=True):
        if line.strip() not in skip:
            key, value = line.strip("\n").split(": ")
            out[key] = parse_opt_value(value)
    return out


def test_released_vq_opt_round_trip_is_byte_identical(tmp_path):
    src = tmp_path / "rvq" / "opt.txt"
    src.parent.mkdir()
    src.write_text(RELEASED_VQ_TEXT)
    raw = read_opt(src)
    cfg = RVQVAEConfig.from_opt(raw, source=src)
    assert cfg == RVQVAEConfig(extra=cfg.extra)  # the released values are the defaults
    assert cfg.vq_norm is None and cfg.shared_codebook is False and cfg.mu == 0.99
    assert cfg.input_width == 263  # derived from dataset_name t2m, not written
    assert cfg.extra["milestones"] == "[150000, 250000]"  # alias lr_scheduler -> milestones
    out = write_opt(tmp_path / "opt.txt", cfg)
    assert out.read_text() == RELEASED_VQ_TEXT
    assert cfg.to_opt() == raw


def test_written_file_reads_back_with_official_rules(tmp_path):
    cfg = RVQVAEConfig(nb_code=64, code_dim=32, output_emb_width=32, width=64,
                       quantize_dropout_prob=0.25, shared_codebook=True)
    text = write_opt(tmp_path / "opt.txt", cfg).read_text()
    ns = official_get_opt(text)
    assert ns["nb_code"] == 64 and ns["quantize_dropout_prob"] == 0.25
    assert ns["shared_codebook"] is True and ns["vq_norm"] == "None"
    assert "input_width" not in ns
    assert RVQVAEConfig.from_opt(read_opt(tmp_path)) == cfg  # a directory works as the path


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("True", True), ("False", False), ("0.0002", 0.0002), ("-0.5", -0.5), ("64", 64),
        ("-3", -3), ("+7", 7), ("1e-05", "1e-05"), ("2e-4", "2e-4"), ("None", "None"),
        ("[150000, 250000]", "[150000, 250000]"), ("true", "true"), ("5.", "5."),
        ("./checkpoints", "./checkpoints"), ("", ""),
    ],
)
def test_parse_opt_value_official_rules(raw, want):
    got = parse_opt_value(raw)
    assert got == want and type(got) is type(want)


def test_official_namespace():
    assert official_namespace({"a": "1", "b": "1e-05", "c": "True"}) == {
        "a": 1, "b": "1e-05", "c": True}


def test_typed_conversion_is_by_field_type(tmp_path):
    raw = dict(RELEASED_VQ_ITEMS, mu="9e-01", quantize_dropout_prob="0")
    cfg = RVQVAEConfig.from_opt(raw, source="x/opt.txt")
    assert cfg.mu == 0.9 and cfg.quantize_dropout_prob == 0.0


def test_unknown_keys_go_to_extra_with_one_log_line(caplog):
    with caplog.at_level(logging.INFO, logger="hmu_core.models.opt"):
        cfg = RVQVAEConfig.from_opt(dict(RELEASED_VQ_ITEMS, my_flag="x"), source="d/opt.txt")
    assert cfg.extra["my_flag"] == "x"
    lines = [r for r in caplog.records if "unmodelled" in r.getMessage()]
    assert len(lines) == 1 and "my_flag" in lines[0].getMessage()


def test_missing_required_key_names_file_and_key():
    raw = {k: v for k, v in RELEASED_VQ_ITEMS.items() if k != "nb_code"}
    with pytest.raises(ConfigError, match=r"ckpt/rvq/opt\.txt.*'nb_code'"):
        RVQVAEConfig.from_opt(raw, source="ckpt/rvq/opt.txt")


def test_bad_value_names_file_and_key():
    with pytest.raises(ConfigError, match=r"a/opt\.txt: key 'width'.*'wide'"):
        RVQVAEConfig.from_opt(dict(RELEASED_VQ_ITEMS, width="wide"), source="a/opt.txt")
    with pytest.raises(ConfigError, match=r"shared_codebook"):
        RVQVAEConfig.from_opt(dict(RELEASED_VQ_ITEMS, shared_codebook="yes"), source="a")


def test_alias_and_new_name_together_is_an_error():
    raw = dict(RELEASED_VQ_ITEMS, milestones="[1]")
    with pytest.raises(ConfigError, match=r"lr_scheduler.*milestones"):
        RVQVAEConfig.from_opt(raw, source="a/opt.txt")


def test_unknown_dataset_needs_explicit_width():
    with pytest.raises(ConfigError, match=r"dataset_name 'mystery'"):
        RVQVAEConfig.from_opt(dict(RELEASED_VQ_ITEMS, dataset_name="mystery"))
    cfg = RVQVAEConfig.from_opt(dict(RELEASED_VQ_ITEMS, dataset_name="kit"))
    assert cfg.input_width == 251


def test_read_opt_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"opt.txt not found"):
        read_opt(tmp_path / "opt.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("------------ Options -------------\nwindow_size = 64\n")
    with pytest.raises(ConfigError, match=r"bad\.txt:2: cannot parse"):
        read_opt(bad)
    dup = tmp_path / "dup.txt"
    dup.write_text("a: 1\na: 2\n")
    with pytest.raises(ConfigError, match=r"twice"):
        read_opt(dup)


def test_read_opt_keeps_raw_strings_and_tolerates_crlf(tmp_path):
    f = tmp_path / "opt.txt"
    f.write_bytes(b"------------ Options -------------\r\nlr: 1e-05\r\nname: a: b\r\n\r\n")
    assert read_opt(f) == {"lr": "1e-05", "name": "a: b"}


def test_generic_config_from_opt_on_a_plain_dataclass():
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class Cfg:
        n_layers: int
        milestones: tuple[int, ...] = (1,)
        flag: bool | None = field(default=None, metadata={"opt": "optional"})

    cfg = config_from_opt(Cfg, {"n_layers": "8", "lr_scheduler": "[5, 6]"},
                          {"lr_scheduler": "milestones"}, source="s")
    assert cfg == Cfg(n_layers=8, milestones=(5, 6), flag=None)
    with pytest.raises(ConfigError, match=r"unknown key"):
        config_from_opt(Cfg, {"n_layers": "8", "milestones": "1", "x": "1"}, source="s")
    with pytest.raises(ConfigError, match=r"'n_layers'"):
        config_from_opt(Cfg, {}, source="s")


def test_render_rejects_unwritable_values():
    with pytest.raises(ConfigError, match=r"newlines"):
        render_opt({"name": "a\nb"})
    with pytest.raises(ConfigError, match=r"config dataclass or a dict"):
        render_opt(3)


def test_write_opt_is_atomic(tmp_path):
    write_opt(tmp_path / "opt.txt", {"b": 2, "a": None, "c": (1, 2)})
    assert (tmp_path / "opt.txt").read_text().splitlines()[1:4] == ["a: None", "b: 2",
                                                                     "c: [1, 2]"]
    assert [p.name for p in tmp_path.iterdir()] == ["opt.txt"]  # no temp file left


# Released-style mask-transformer opt.txt (keys of reference/momask.md §2.1).
RELEASED_MASK_ITEMS = {
    "batch_size": "64", "checkpoints_dir": "./checkpoints", "cond_drop_prob": "0.1",
    "dataset_name": "t2m", "dropout": "0.2", "eval_every_e": "10", "ff_size": "1024",
    "fix_token_emb": "False", "gamma": "0.1", "gpu_id": "1", "gumbel_sample": "False",
    "is_continue": "False", "is_train": "True", "latent_dim": "384", "log_every": "50",
    "lr": "0.0002", "max_epoch": "500", "max_motion_length": "196", "milestones": "[50000]",
    "n_heads": "6", "n_layers": "8", "name": "t2m_nlayer8_nhead6_ld384_ff1024_cdp0.1_rvq6ns",
    "save_latest": "500", "seed": "3407", "unit_length": "4",
    "vq_name": "rvq_nq6_dc512_nc512_noshare_qdp0.2", "warm_up_iter": "2000",
}


def test_released_mask_transformer_opt_round_trip(tmp_path):
    from hmu_core.models import opt_aliases, resolve_kind

    _model, cfg_cls = resolve_kind("mask_transformer")
    text = ("------------ Options -------------\n"
            + "".join(f"{k}: {RELEASED_MASK_ITEMS[k]}\n" for k in sorted(RELEASED_MASK_ITEMS))
            + "-------------- End ----------------\n")
    (tmp_path / "opt.txt").write_text(text)
    cfg = config_from_opt(cfg_cls, read_opt(tmp_path), opt_aliases("mask_transformer"),
                          source=tmp_path / "opt.txt", overrides={"code_dim": 512})
    assert cfg.num_layers == 8 and cfg.num_heads == 6 and cfg.latent_dim == 384
    assert render_opt(cfg) == text
