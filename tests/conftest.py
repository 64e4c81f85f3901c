"""Shared pytest fixtures: where the conformance fixtures and real captions live, and the
default model's bundle (exported once per session for every test that runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CONFORMANCE = SHARED / "conformance"
SHARED_DATA = SHARED / "data"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest tests first (``@pytest.mark.slow(seconds=...)``, the rest keep their order).

    ``scripts/test.sh`` hands tests to the pytest-xdist workers one at a time, so the longest
    ones start at once, each on a worker, and the short ones fill in around them; in file order
    the README walkthrough started last and ran alone on one core for the final minute.
    """
    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return 0.0 if marker is None else float(marker.kwargs.get("seconds", 1.0))

    items.sort(key=seconds, reverse=True)


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
