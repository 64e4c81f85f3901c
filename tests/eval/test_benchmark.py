"""``hmu benchmark``: tables, the r ablation and single concepts, and resuming, on the embedded
model with a micro evaluator and a minimal protocol."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hmu_core.errors import ConfigError
from hmu_core.eval.benchmark import BenchmarkPlan, parse_models, run_benchmark
from hmu_core.eval.protocol import ProtocolParams
from hmu_core.sampling.params import SamplingParams
from hmu_core.shard import Shard

from .conftest import DEFAULT_MODEL


def _plan(eval_data: Path, micro_evaluator: Path, out: Path) -> BenchmarkPlan:
    # Two mask-predict steps: the tables' shape and reuse do not depend on motion quality.
    protocol = ProtocolParams(repeats=1, batch_size=3, mm_captions=0, seed=1,
                              sampling=SamplingParams(timesteps=2))
    return BenchmarkPlan(data_dir=eval_data, evaluator_dir=micro_evaluator, out=out,
                         models=(("original", DEFAULT_MODEL),), concepts=("violence_motionx",),
                         r_sweep=(2,), singles=("violence",), single_r=2, protocol=protocol)


@pytest.mark.slow(seconds=20)
def test_sharded_benchmark_then_one_run_writes_the_tables_and_resumes(eval_data, micro_evaluator,
                                                                     tmp_path):
    """Two shards share the evaluations between them and write no table; one plain run then
    only writes the tables (every evaluation and LCR set reused), and a second run changes
    nothing. One test, so the eight evaluations run once."""
    out = tmp_path / "bench"
    evaluated = []
    for i in (1, 0):  # jobs: 0 original, 1 r=2, 2 the single concept
        steps: list[str] = []
        assert run_benchmark(_plan(eval_data, micro_evaluator, out), step=steps.append,
                             shard=Shard(i, 2)) is None
        evaluated.append(sum(s.startswith("evaluating") for s in steps))
        assert not (out / "benchmark.md").exists()
    assert evaluated == [2, 2 + 4]  # r=2: both subsets; original + 2 single rows x 2
    steps = []
    path = run_benchmark(_plan(eval_data, micro_evaluator, out), step=steps.append,
                         command="hmu benchmark ...")
    assert steps == []  # every evaluation and LCR set came from the shards
    text = path.read_text()
    for heading in ("Table 1: methods", "Table 3: LCR r ablation", "Table 4: single concepts",
                    "| original |", "| r=2 |", "[violence]", "implicit attack",
                    "hmu benchmark ..."):
        assert heading in text, heading
    rows = list(csv.DictReader((out / "benchmark.csv").open()))
    assert {(r["table"], r["subset"]) for r in rows} >= {("table1", "forget"),
                                                         ("table3", "retain")}
    assert all(float(r["fid"]) >= 0 for r in rows)
    assert (out / "r_ablation.png").stat().st_size > 0
    assert (out / "models" / "lcr-r2" / "unlearning.json").is_file()

    again: list[str] = []
    run_benchmark(_plan(eval_data, micro_evaluator, out), step=again.append,
                  command="hmu benchmark ...")
    assert again == []
    assert path.read_text() == text


def test_plan_and_models_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="NAME=DIR"):
        parse_models(["original"])
    with pytest.raises(ConfigError, match="not a directory"):
        parse_models([f"lcr={tmp_path / 'missing'}"])
    with pytest.raises(ConfigError, match="original"):
        BenchmarkPlan(data_dir=tmp_path, evaluator_dir=tmp_path, out=tmp_path,
                      models=(("lcr", tmp_path),), r_sweep=(4,))
    with pytest.raises(ConfigError, match="distinct"):
        BenchmarkPlan(data_dir=tmp_path, evaluator_dir=tmp_path, out=tmp_path,
                      models=(("a", tmp_path), ("a", tmp_path)))
