"""Shared helpers for the text-encoder tests: the openai-clip reference, when installed."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest


def import_openai_clip(submodule: str):
    """``clip.<submodule>`` of openai-clip without running ``clip/__init__.py``.

    That file imports torchvision and pkg_resources, which fail with this torch
    (runtime.md §2); ``clip.model`` and ``clip.simple_tokenizer`` need neither. Skips the
    test when openai-clip (or its ``regex`` dependency) is not installed.
    """
    if "clip" not in sys.modules:
        spec = importlib.util.find_spec("clip")
        if spec is None or importlib.util.find_spec("regex") is None:
            pytest.skip("openai-clip not installed (pip install openai-clip)")
        pkg = types.ModuleType("clip")
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__spec__ = spec
        sys.modules["clip"] = pkg
    return importlib.import_module(f"clip.{submodule}")


@pytest.fixture(scope="session")
def openai_clip():
    """``import_openai_clip``, as a fixture (test modules cannot import conftest by name)."""
    return import_openai_clip
