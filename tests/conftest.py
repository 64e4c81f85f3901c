"""Shared pytest fixtures: where the conformance fixtures and real captions live, the
default model's bundle (exported once per session for every test that runs it) and a maker of
micro evaluators."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# Under pytest-xdist, each worker gets its share of the cores for torch's and numpy's thread
# pools (set before any test imports them). With the default (every core per worker) the
# workers' OpenMP threads spin-wait against each other: on 2 cores the suite burned 668 s of
# CPU and took 6 min 8 s, against 503 s and 4 min 53 s with one thread per worker.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ and "OMP_NUM_THREADS" not in os.environ:
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(_share)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CONFORMANCE = SHARED / "conformance"
SHARED_DATA = SHARED / "data"


ONE_WORKER_FIXTURES = ("synth_balanced", "sampled", "eval_data", "unlearn_data", "synth_dir",
                       "real_captions")
"""Module and session fixtures that take seconds to build and serve several tests: every test
that uses one runs on the same pytest-xdist worker, so it is built once instead of once per
worker (measured: 20 s of CPU per run went to building such fixtures twice)."""


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist turns the groups into node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest tests first (``@pytest.mark.slow(seconds=...)``, the rest keep their order), and
    the users of each of ``ONE_WORKER_FIXTURES`` in one ``xdist_group``.

    ``scripts/test.sh`` hands tests to the pytest-xdist workers a few at a time
    (``--dist loadgroup``: a group is one unit, at the place of its longest test), so the
    longest ones start at once, each on a worker, and the short ones fill in around them; in
    file order the README walkthrough started last and ran alone on one core for the final
    minute.
    """
    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return 0.0 if marker is None else float(marker.kwargs.get("seconds", 1.0))

    items.sort(key=seconds, reverse=True)
    for item in items:
        shared = next((name for name in ONE_WORKER_FIXTURES if name in item.fixturenames), None)
        if shared is not None:
            item.add_marker(pytest.mark.xdist_group(shared))


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """``../shared/conformance``: fixtures made by running the official code."""
    if not CONFORMANCE.is_dir():
        pytest.fail(f"conformance fixtures not found at {CONFORMANCE}: put shared/ beside the repo")
    return CONFORMANCE


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``../shared/data``: the real HumanML3D captions and official split files."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real captions not found at {SHARED_DATA}: put shared/ beside the repo")
    return SHARED_DATA


@pytest.fixture(scope="session")
def default_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of the embedded default model (tiny MoMask + MiniLM), exported once."""
    from exporter.export import export_bundle
    from hmu_core.assets import default_model_dir

    return export_bundle(default_model_dir(), tmp_path_factory.mktemp("bundle") / "default")


@pytest.fixture(scope="session")
def make_micro_evaluator() -> Callable[[Path, Path], Path]:
    """``make(data_dir, out) -> out``: an evaluator dir for a dataset in the layout ``hmu train
    evaluator`` writes: text_mot_match/ (seeded random weights of a micro config, the
    dataset's meta statistics) and glove/ (word vectors of its captions). Random weights: the
    tests that use it need determinism and shapes, not a good evaluator."""
    from hmu_core.data.datasets import meta_stats
    from hmu_core.data.humanml3d import HumanML3D
    from hmu_core.eval.evaluator import Evaluator, EvaluatorConfig, save_evaluator
    from hmu_core.train.evaluator import dataset_word_vectors

    micro = EvaluatorConfig(dim_movement_enc_hidden=16, dim_movement_latent=8, dim_word=16,
                            dim_text_hidden=8, dim_motion_hidden=16, dim_coemb_hidden=4)

    def make(data_dir: Path, out: Path) -> Path:
        dataset = HumanML3D(data_dir)
        mean, std = meta_stats(dataset.mean(), dataset.std())
        save_evaluator(out / "text_mot_match", Evaluator(micro, mean=mean, std=std, seed=3))
        dataset_word_vectors(dataset, micro.dim_word, seed=0).save(out / "glove")
        return out

    return make
