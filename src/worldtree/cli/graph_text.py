"""The DAG as text: Mermaid, Graphviz dot, or an indented tree."""

from __future__ import annotations

from worldtree.model.graph import ExecutionGraph


def to_mermaid(graph: ExecutionGraph) -> str:
    ids = {n.id: f"n{i}" for i, n in enumerate(graph.nodes)}
    lines = ["flowchart TD"]
    for n in graph.nodes:
        label = n.path.replace('"', "'")
        lines.append(f'  {ids[n.id]}["{label}"]')
    for src, dst in graph.edges():
        lines.append(f"  {ids[src]} --> {ids[dst]}")
    return "\n".join(lines) + "\n"


def to_dot(graph: ExecutionGraph) -> str:
    lines = [f'digraph "{graph.name}" {{', "  rankdir=LR;", "  node [shape=box];"]
    for n in graph.nodes:
        lines.append(f'  "{n.id}" [label="{n.path}"];')
    for src, dst in graph.edges():
        lines.append(f'  "{src}" -> "{dst}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_tree(graph: ExecutionGraph) -> str:
    lines = [graph.name]
    last: list[str] = []
    for n in graph.nodes:
        parts = n.path.split("/")
        common = 0
        while common < min(len(last), len(parts) - 1) and last[common] == parts[common]:
            common += 1
        for depth in range(common, len(parts) - 1):
            lines.append("  " * (depth + 1) + parts[depth])
        needs = f"  (needs: {', '.join(n.needs)})" if n.needs else ""
        lines.append("  " * len(parts) + f"- {parts[-1]}{needs}")
        last = parts[:-1]
    return "\n".join(lines) + "\n"
