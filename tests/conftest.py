"""Shared pytest fixtures: where the conformance fixtures and real captions live, and the
default model's bundle (exported once per session for every test that runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CONFORMANCE = SHARED / "conformance"
SHARED_DATA = SHARED / "data"


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
