"""Layers point one way (issue 7 §5): a module imports only from layers below its own.

Bottom to top::

    errors <- model <- compile <- connectors <- ops <- (store, backends) <- engine <- app
           <- testing <- cli

``store`` and ``backends`` share a rank and must not import each other. Imports inside
``if TYPE_CHECKING:`` are annotations, not dependencies, and are skipped; imports inside
functions (lazy ones) count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "worldtree"
#: Lower ranks never import higher ones (docs/architecture.md, "Layers"). Beside app: exec plugins
#: and Argo (export/submit use the model, the command builder and the condition evaluator); stacks
#: apply through plugins; gitops (webhooks, statuses, schedules) submits through the app layer; the
#: server and the MCP server are clients of the app, stack and gitops layers.
RANK = {"errors": 0, "api": 0, "model": 1, "compile": 2, "connectors": 3, "ops": 4, "store": 5, "backends": 5,
        "engine": 6, "app": 7, "agent": 8, "plugins": 7, "argo": 7, "gitops": 8, "testing": 8, "stack": 8, "server": 9,
        "skills": 8, "mcp": 9, "cli": 10, "__main__": 11}


def _layer(module: str) -> str | None:
    """``worldtree.backends.ssh.remote`` -> ``backends``; the package root has no layer."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "worldtree" else None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def violations(src: Path = SRC) -> list[str]:
    out = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src.parent)
        module = ".".join(rel.with_suffix("").parts)
        own = _layer(module)
        if own is None or own == "__init__":
            continue
        for line, imported in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = _layer(imported)
            if target is None or target == own or target not in RANK or own not in RANK:
                continue
            if RANK[target] >= RANK[own]:
                out.append(f"{rel}:{line}: {own} imports {imported} ({target} is not below {own})")
    return out


def test_every_module_belongs_to_a_layer() -> None:
    names = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert names == set(RANK)


def test_layers_point_one_way() -> None:
    assert violations() == []


def test_the_check_sees_a_lazy_upward_import(tmp_path: Path) -> None:
    (tmp_path / "worldtree" / "compile").mkdir(parents=True)
    (tmp_path / "worldtree" / "compile" / "x.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import worldtree.cli\n"
        "def f():\n    from worldtree.backends.ssh import remote\n")
    assert violations(tmp_path / "worldtree") == [
        "worldtree/compile/x.py:5: compile imports worldtree.backends.ssh (backends is not below compile)"]


@pytest.mark.parametrize(("module", "absent"), [
    ("worldtree.backends.docker.convert", ["aiodocker", "aiohttp"]),
    ("worldtree.backends.docker.compose", ["aiodocker", "aiohttp"]),
    ("worldtree.compile.loader", ["asyncssh", "aiodocker", "worldtree.backends"]),
    ("worldtree.backends.ssh.remote", ["asyncssh"]),
    ("worldtree.connectors.ssh.target", ["asyncssh"]),
])
def test_pure_modules_do_not_load_client_libraries(module: str, absent: list[str]) -> None:
    code = (f"import sys, {module}\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {absent!r} or "
            f"any(m == a or m.startswith(a + '.') for a in {absent!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
