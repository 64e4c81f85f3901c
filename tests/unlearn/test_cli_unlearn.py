"""``hmu unlearn``: every method end to end on micro MoMask and BAMM sets, the record, what
changes and what must not, reruns, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hmu_core.cli.main import main
from hmu_core.models.checkpoints import read_checkpoint
from hmu_core.unlearn.record import tensor_sha256

from .conftest import NB_CODE, write_micro_set


def _tensors(model_set: Path) -> dict[str, torch.Tensor]:
    """Every tensor of every loaded checkpoint, keyed part/entry.key."""
    out = {}
    for part in ("vq", "trans", "bamm", "res", "length_estimator"):
        for file in sorted((model_set / part / "model").glob("*.tar")) if (
                model_set / part).is_dir() else []:
            for entry, value in read_checkpoint(file).items():
                if isinstance(value, dict):
                    for key, tensor in value.items():
                        if isinstance(tensor, torch.Tensor):
                            out[f"{part}/{entry}.{key}"] = tensor
    return out


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> list[str]:
    assert before.keys() == after.keys()
    return sorted(k for k in before if not torch.equal(before[k], after[k]))


def _run(*args: object) -> int:
    return main(["unlearn", *map(str, args), "--no-progress"])


def test_lcr_edits_only_the_removed_codebook_rows(momask_set, unlearn_data, tmp_path):
    out = tmp_path / "lcr"
    assert _run("lcr", "--model", momask_set, "--data", unlearn_data, "--concept", "kick",
                "--r", "4", "--repeats", "2", "--out", out) == 0
    before, after = _tensors(momask_set), _tensors(out)
    assert _changed(before, after) == ["vq/vq_model.quantizer.layers.0.codebook"]
    record = json.loads((out / "unlearning.json").read_text())
    removed = record["results"]["removed_codes"]["0"]
    safe = record["results"]["safe_code"]["0"]
    assert 1 <= len(removed) <= 4 and safe not in removed
    key = "vq/vq_model.quantizer.layers.0.codebook"
    rows = (before[key] != after[key]).any(dim=1).nonzero().flatten().tolist()
    assert sorted(rows) == sorted(removed)
    (edit,) = record["edits"]
    assert edit == {"part": "vq", "tensor": "quantizer.layers.0.codebook",
                    "sha256_before": tensor_sha256(before[key]),
                    "sha256_after": tensor_sha256(after[key])}
    assert record["method"] == "lcr" and record["seed"] == 0
    assert record["concepts"][0]["name"] == "kick" and record["concepts"][0]["r"] == 4
    assert record["parameters"]["protocol"]["repeats"] == 2
    assert record["data"]["forget_clips"] > 0 and record["versions"]["torch"]
    assert json.loads((out / "hmu.json").read_text())["trans"] == "trans"
    # only the files the loaders read are carried over; the cache stays with the source
    assert sorted(p.name for p in (out / "trans" / "model").iterdir()) == ["latest.tar"]
    assert list((momask_set / "cache").glob("lcr_codes_*.npz"))


def test_lcr_rerun_gives_the_same_files(momask_set, unlearn_data, tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert _run("lcr", "--model", momask_set, "--data", unlearn_data, "--concept",
                    "kick:3,punch:2", "--repeats", "2", "--seed", "5", "--out", out) == 0
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(outs[1]) for p in outs[1].rglob("*") if p.is_file())
    for rel in files:
        a, b = (outs[0] / rel).read_bytes(), (outs[1] / rel).read_bytes()
        if rel.name == "unlearning.json":
            ja, jb = json.loads(a), json.loads(b)
            ja.pop("timing"), jb.pop("timing")
            assert ja == jb
        else:
            assert a == b, rel
    record = json.loads((outs[0] / "unlearning.json").read_text())
    per = record["results"]["per_concept"]
    merged = record["results"]["removed_codes"]["0"]
    assert merged == list(dict.fromkeys(per["kick"]["codes"]["0"] + per["punch"]["codes"]["0"]))



@pytest.mark.parametrize("method", ["lcr", "suppress"])
def test_no_cache_leaves_the_model_set_alone(method, unlearn_data, tmp_path):
    source = write_micro_set(tmp_path / "set", unlearn_data)
    assert _run(method, "--model", source, "--data", unlearn_data, "--concept", "kick", "--r",
                "2", "--repeats", "1", "--no-cache", "--out", tmp_path / "a") == 0
    assert not (source / "cache").exists()
    assert _run(method, "--model", source, "--data", unlearn_data, "--concept", "kick", "--r",
                "2", "--repeats", "1", "--out", tmp_path / "b") == 0
    assert list((source / "cache").iterdir())

def test_lcr_on_bamm_and_other_layers(bamm_set, unlearn_data, tmp_path):
    out = tmp_path / "lcr_bamm"
    assert _run("lcr", "--model", bamm_set, "--data", unlearn_data, "--concept", "violence",
                "--r", "3", "--layers", "0,2", "--safe-code", "sampled", "--repeats", "1",
                "--out", out) == 0
    assert _changed(_tensors(bamm_set), _tensors(out)) == [
        "vq/vq_model.quantizer.layers.0.codebook", "vq/vq_model.quantizer.layers.2.codebook"]
    assert (out / "bamm" / "model" / "latest.tar").is_file()


@pytest.mark.parametrize("method", ["uce", "rece"])
@pytest.mark.parametrize("model_set", ["momask_set", "bamm_set"])
def test_uce_and_rece_edit_only_cond_emb(method, model_set, request, tmp_path):
    source = request.getfixturevalue(model_set)
    out = tmp_path / method
    extra = ["--epochs", "2"] if method == "rece" else []
    assert _run(method, "--model", source, "--concept", "violence", *extra, "--out", out) == 0
    base = "bamm" if model_set == "bamm_set" else "trans"
    assert _changed(_tensors(source), _tensors(out)) == sorted([
        f"{base}/t2m_transformer.cond_emb.weight", "res/res_transformer.cond_emb.weight"])
    assert (out / "vq" / "model" / "net_best_fid.tar").read_bytes() == \
        (source / "vq" / "model" / "net_best_fid.tar").read_bytes()
    record = json.loads((out / "unlearning.json").read_text())
    assert [e["part"] for e in record["edits"]] == ["trans", "res"]
    assert record["results"]["erase_texts"][:3] == ["kick", "punch", "hit"]
    assert len(record["results"]["per_epoch"]) == (2 if method == "rece" else 0)


@pytest.mark.parametrize("method", ["finetune", "retrain"])
def test_training_baselines_leave_the_vq_alone(method, momask_set, unlearn_data, tmp_path):
    out = tmp_path / method
    assert _run(method, "--model", momask_set, "--data", unlearn_data, "--concept", "violence",
                "--max-iters", "2", "--out", out) == 0
    changed = _changed(_tensors(momask_set), _tensors(out))
    assert changed and all(k.startswith(("trans/", "res/")) for k in changed)
    record = json.loads((out / "unlearning.json").read_text())
    assert record["results"]["training"]["trans"]["iterations"] == 2
    assert record["data"]["retain_clips"] < record["data"]["clips"]
    assert not list(tmp_path.glob(".hmu-train-*"))  # scratch runs are cleaned up


@pytest.mark.parametrize("args, message", [
    (["lcr", "--concept", "murder"], "unknown concept"),
    (["lcr", "--concept", "kick", "--r", str(NB_CODE + 1)], f"1..{NB_CODE}"),
    (["lcr", "--concept", "kick", "--layers", "7"], "quantizer layers"),
    (["uce", "--concept", "kick:4"], "plain concept names"),
    (["finetune", "--concept", "kick", "--epochs", "0"], "--epochs must be >= 1"),
])
def test_bad_inputs_exit_2_and_write_nothing(args, message, momask_set, unlearn_data, tmp_path,
                                             capsys):
    out = tmp_path / "out"
    data = [] if args[0] == "uce" else ["--data", unlearn_data]
    assert _run(*args, "--model", momask_set, *data, "--out", out) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_dataset_without_forget_clips_and_model_without_vq(momask_set, unlearn_data, tmp_path,
                                                           capsys):
    concept = tmp_path / "never.toml"
    concept.write_text('[concepts.never]\nkeywords = ["zzyzx"]\n')
    out = tmp_path / "out"
    assert _run("lcr", "--model", momask_set, "--data", unlearn_data, "--concept", concept,
                "--out", out) == 2
    assert "nothing to unlearn" in capsys.readouterr().err
    empty = tmp_path / "empty_set"
    empty.mkdir()
    assert _run("lcr", "--model", empty, "--data", unlearn_data, "--concept", "kick",
                "--out", out) == 2
    assert "no vq model" in capsys.readouterr().err
    assert not out.exists()


def test_existing_output_needs_overwrite(momask_set, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert _run("uce", "--model", momask_set, "--concept", "kick", "--out", out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def _suppressed(record: dict) -> dict[int, list[int]]:
    return {int(q): c for q, c in record["results"]["suppressed_codes"].items()}


@pytest.mark.parametrize(("set_name", "base_dir"), [("momask_set", "trans"), ("bamm_set", "bamm")])
def test_suppress_edits_only_the_heads(set_name, base_dir, request, unlearn_data, tmp_path):
    model_set = request.getfixturevalue(set_name)
    out = tmp_path / "sup"
    assert _run("suppress", "--model", model_set, "--data", unlearn_data, "--concept",
                "violence", "--r", "0:4,1-2:2", "--repeats", "2", "--out", out) == 0
    record = json.loads((out / "unlearning.json").read_text())
    codes = _suppressed(record)
    assert [len(codes[q]) for q in (0, 1, 2)] == [4, 2, 2]
    before, after = _tensors(model_set), _tensors(out)
    head = f"{base_dir}/model.output_process.poseFinal.bias"
    head = head if head in after else f"{base_dir}/net.output_process.poseFinal.bias"
    changed = _changed({k: v for k, v in before.items() if not k.startswith("res/")},
                       {k: v for k, v in after.items() if not k.startswith("res/")})
    assert [k.split(".", 1)[1] for k in changed] == ["output_process.poseFinal.bias"]
    moved = torch.nonzero(after[changed[0]] != before[changed[0]]).flatten().tolist()
    assert sorted(moved) == sorted(codes[0])  # BAMM's END logit (index NB_CODE) untouched
    res_bias = next(v for k, v in after.items() if k.endswith("output_proj_bias"))
    for q in (1, 2):
        assert sorted(torch.nonzero(res_bias[q - 1] < -1e8).flatten().tolist()) == \
            sorted(codes[q])
    assert "share_weight: False" in (out / "res" / "opt.txt").read_text()
    assert record["method"] == "suppress" and record["parameters"]["stats"] == "data"
    evidence = record["results"]["evidence"]["violence"]["0"]
    assert sorted(map(int, evidence)) == sorted(codes[0])
    assert {e["tensor"] for e in record["edits"]} == {"output_process.poseFinal.bias",
                                                      "output_proj_bias"}


def _captions_only(data: Path, out: Path) -> Path:
    """A captions-only copy of ``data``: texts and split files, no motions at all."""
    (out / "texts").mkdir(parents=True)
    for name in ("train.txt", "val.txt", "test.txt", "train_val.txt", "all.txt"):
        if (data / name).is_file():
            (out / name).write_bytes((data / name).read_bytes())
    for text in (data / "texts").glob("*.txt"):
        (out / "texts" / text.name).write_bytes(text.read_bytes())
    return out


def test_suppress_from_generated_statistics_needs_no_motions(momask_set, unlearn_data,
                                                              tmp_path):
    captions = _captions_only(unlearn_data, tmp_path / "captions")
    outs = [tmp_path / "gen_a", tmp_path / "gen_b"]
    for out in outs:
        assert _run("suppress", "--model", momask_set, "--data", captions, "--concept",
                    "violence", "--stats", "generated", "--r", "3", "--out", out) == 0
    records = [json.loads((o / "unlearning.json").read_text()) for o in outs]
    assert records[0]["parameters"]["stats"] == "generated"
    assert records[0]["results"]["statistics"]["samples"] > 0
    assert _suppressed(records[0]) == _suppressed(records[1])  # seeded and cached
    assert all(len(c) == 3 for c in _suppressed(records[0]).values())
    # LCR takes the same statistics source.
    lcr = tmp_path / "lcr_gen"
    assert _run("lcr", "--model", momask_set, "--data", captions, "--concept", "violence",
                "--stats", "generated", "--r", "3", "--out", lcr) == 0
    assert len(json.loads((lcr / "unlearning.json").read_text())["results"]["removed_codes"][
        "0"]) == 3


def test_suppress_auto_r_searches_on_val_and_records_the_curve(momask_set, unlearn_data,
                                                               tmp_path, capsys):
    out = tmp_path / "auto"
    assert main(["unlearn", "suppress", "--model", str(momask_set), "--data", str(unlearn_data),
                 "--concept", "violence", "--r", "auto", "--r-grid", "0", "2", "6",
                 "--search-seeds", "1", "--repeats", "2", "--out", str(out)]) == 0
    search = json.loads((out / "unlearning.json").read_text())["results"]["r_search"]
    assert search["split"] == "val" and search["judge"] == "FamilyValidation"
    assert [p["r"]["0"] for p in search["uniform"]] == [0, 2, 6]
    chosen = {int(q): r for q, r in search["chosen"].items()}
    points = search["uniform"] + search["base_only"] + search["residual_only"]
    assert search["evaluated"] == len({tuple(p["r"].values()) for p in points})
    best = [p for p in points if p["retain_score"] >= search["retain_floor"] - 1e-12]
    assert min(p["forget_toxicity"] for p in best) == next(
        p["forget_toxicity"] for p in points if {int(q): r for q, r in p["r"].items()} == chosen)
    assert (out / "r_search.png").read_bytes()[:4] == b"\x89PNG"
    assert "r chosen on val" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["--r", "0:2,0:3"], "twice"), (["--r", "9:2"], "out of range"),
    (["--r", "abc"], "LAYER:R"), (["--concept", "kick:3"], "per layer"),
    (["--r", "auto", "--r-grid", "-1"], "r-grid"), (["--r", "500"], "codebook size"),
    (["--r", "auto", "--retain-budget", "nan"], "retain-budget"),
    (["--r", "2", "--greedy", "-1"], "--greedy"),
    (["--r", "2", "--evaluator", "runs/t2m"], "give --r auto or --greedy")])
def test_suppress_bad_inputs_exit_2_and_write_nothing(args, message, momask_set, unlearn_data,
                                                      tmp_path, capsys):
    out = tmp_path / "bad"
    full = ["suppress", "--model", momask_set, "--data", unlearn_data, "--repeats", "1",
            "--out", out, *args]
    assert _run(*full) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_suppress_greedy_adds_base_codes_that_lower_val_toxicity(momask_set, unlearn_data,
                                                                  tmp_path, capsys):
    out = tmp_path / "greedy"
    assert _run("suppress", "--model", momask_set, "--data", unlearn_data, "--concept",
                "violence", "--r", "2", "--greedy", "2", "--greedy-pool", "4", "--search-seeds",
                "1", "--repeats", "2", "--out", out) == 0
    results = json.loads((out / "unlearning.json").read_text())["results"]
    greedy = results["greedy"]
    assert greedy["split"] == "val" and greedy["start"]["r_base"] == 2
    base = results["suppressed_codes"]["0"]
    start, added = base[:2], base[2:]
    assert added == greedy["added"] and len(added) <= 2
    assert len(greedy["candidates"]) == 4 and not set(greedy["candidates"]) & set(start)
    assert set(added) <= set(greedy["candidates"])
    assert greedy["steps"], "at least one step tries every candidate"
    previous = greedy["start"]["forget_toxicity"]
    tried = set(greedy["candidates"])
    for step in greedy["steps"]:
        assert {int(c) for c in step["trials"]} == tried  # every remaining candidate tried
        assert step["trials"][str(step["best"])] == min(step["trials"].values())
        if step["kept"]:
            assert step["forget_toxicity"] < previous
            assert step["retain_score"] >= greedy["retain_floor"] - 1e-12
            previous = step["forget_toxicity"]
            tried.discard(step["best"])
    assert all(len(codes) == 2 for q, codes in results["suppressed_codes"].items() if q != "0")
    assert set(results["evidence"]["violence"]["0"]) == {str(c) for c in base}
    assert "added on val" in capsys.readouterr().out


def test_captions_only_search_is_judged_by_the_evaluator(momask_set, unlearn_data, tmp_path,
                                                         capsys, make_micro_evaluator):
    captions = _captions_only(unlearn_data, tmp_path / "captions")
    args = ["suppress", "--model", momask_set, "--data", captions, "--concept", "violence",
            "--stats", "generated", "--r", "2", "--greedy", "1", "--greedy-pool", "3",
            "--search-seeds", "1"]
    assert _run(*args, "--out", tmp_path / "no_judge") == 2
    assert "captions only" in capsys.readouterr().err and not (tmp_path / "no_judge").exists()
    evaluator = make_micro_evaluator(unlearn_data, tmp_path / "evaluator")
    out = tmp_path / "judged"
    assert _run(*args, "--evaluator", evaluator, "--out", out) == 0
    greedy = json.loads((out / "unlearning.json").read_text())["results"]["greedy"]
    assert greedy["judge"] == "EvaluatorValidation" and greedy["evaluator"] == str(evaluator)
    assert greedy["lengths"] == "length estimator"
    assert greedy["retain_measure"] == "retain R-precision top 3 (evaluator)"
    for point in (greedy["original"], greedy["start"]):
        assert 0 <= point["forget_toxicity"] <= 1 and 0 <= point["retain_score"] <= 1
    assert len(greedy["steps"][0]["trials"]) == 3
