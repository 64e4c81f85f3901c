"""hmu_core.models and hmu_core.unlearn import each other without a cycle: every module loads
first in a fresh interpreter state, and the static import graph (function-level imports and
modules named for importlib included, so a lazy import cannot hide a cycle) has no loop."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hmu_core/models", "hmu_core/unlearn")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(file.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = file
    return found


def _imports(file: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of ``modules`` that ``file`` imports anywhere (``from P import m`` counts as
    importing ``P.m`` when that is a module; a string naming a module counts too)."""
    out = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {t for t in [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                    if t in modules}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.Constant) and node.value in modules:
            out.add(node.value)  # importlib by name (the package's lazy attribute table)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])) is not None:
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])) is not None:
            return found
    return None


def test_cycle_finder_sees_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_static_import_graph_has_no_cycle():
    modules = _modules()
    graph = {name: _imports(file, modules) - {name} for name, file in modules.items()}
    assert "hmu_core.models.model_set" in graph
    assert _cycle(graph) is None


def test_every_module_imports_first_in_a_fresh_state():
    """One interpreter; before each module every hmu_core module is dropped from
    ``sys.modules``, so each one is the entry point of its own import chain."""
    names = sorted(_modules())
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'hmu_core']:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        "print('ok', len(" + repr(names) + "))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok", str(len(names))]


def test_hmu_core_below_the_cli_never_imports_exporter():
    """The layers: exporter builds on hmu_core, so only the ``hmu`` CLI (the app layer that
    offers ``hmu export``/``clips``/``demo``) may reach up into it."""
    offenders = []
    for file in sorted((ROOT / "hmu_core").rglob("*.py")):
        if file.relative_to(ROOT).parts[:2] == ("hmu_core", "cli"):
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{file.relative_to(ROOT)}: {n}" for n in names
                          if n == "exporter" or n.startswith("exporter.")]
    assert offenders == []
