"""Fixtures of the evaluation tests: a small synthetic set and a micro evaluator for it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hmu_core.synth.generate import write_synthetic_dataset

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "hmu_core" / "assets" / "default_model"


@pytest.fixture(scope="session")
def eval_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 synthetic clips, 30 % with a toxic segment (a few seconds to write)."""
    out = tmp_path_factory.mktemp("eval_data") / "synth"
    write_synthetic_dataset(out, 120, seed=7, toxic_share=0.3)
    return out


@pytest.fixture(scope="session")
def micro_evaluator(eval_data: Path, tmp_path_factory: pytest.TempPathFactory,
                    make_micro_evaluator: Callable[[Path, Path], Path]) -> Path:
    """An evaluator dir for ``eval_data`` (``make_micro_evaluator``)."""
    return make_micro_evaluator(eval_data, tmp_path_factory.mktemp("micro_evaluator"))
