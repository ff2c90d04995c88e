"""The folders are the layers (ARCHITECTURE.md, "Layout"): a package imports only from the
ones below it, and no module imports itself back through others. Read from the source's
imports (function-level ones included), so a move that breaks the order fails here."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Bottom to top. A module may import its own package and any package below it.
LAYERS = ["errors", "basics", "augment", "config", "data", "models", "run", "track", "train",
          "predict", "sweep", "tune", "api", "__init__", "cli", "__main__"]
SAME_FLOOR = {frozenset({"data", "models"}), frozenset({"predict", "sweep"})}  # never each other


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "lowres").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 2:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import module` depends on that module; `from pkg import name`, on pkg
            targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known
                       else node.module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("lowres."):
                found.add(target)
    return found


def _package(module: str) -> str:
    return module.split(".")[1]


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods) | {"lowres"}
    return {name: _imports(name, path, known) for name, path in mods.items()}


def test_every_package_is_in_the_layer_table():
    assert {_package(m) for m in _graph()} <= set(LAYERS)


def test_no_import_runs_up_a_layer():
    upward = []
    for module, targets in _graph().items():
        here = _package(module)
        for target in targets:
            there = _package(target)
            if there == here:
                continue
            if LAYERS.index(there) >= LAYERS.index(here) or frozenset({here, there}) in SAME_FLOOR:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_cycle_between_modules():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []
