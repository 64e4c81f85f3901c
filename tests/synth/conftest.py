"""Synthetic datasets written once per test session (generation takes seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hmu_core.synth.generate import SynthSummary, write_synthetic_dataset


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    """A 48-clip set (seed 5) for reader, metadata, round-trip and stats tests."""
    out = tmp_path_factory.mktemp("synth") / "small"
    return out, write_synthetic_dataset(out, 48, seed=5, toxic_share=0.3)


@pytest.fixture(scope="session")
def synth_balanced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    """A 380-clip set with 40 % toxic clips (seed 11), for the classifier."""
    out = tmp_path_factory.mktemp("synth") / "balanced"
    return out, write_synthetic_dataset(out, 380, seed=11, toxic_share=0.4)
