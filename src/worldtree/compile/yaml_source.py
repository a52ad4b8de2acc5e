"""YAML -> plain Python data plus a map from each value's path to its position in the file.

PyYAML's composer gives every node a start mark; constructing the data ourselves from the
node tree keeps those marks, so the loader can point any later error at ``file:line:col``.
Mapping keys stay strings exactly as written: YAML 1.1 would turn ``on:`` (seed 002's trigger
key) into ``True``.
"""

from __future__ import annotations

from typing import Any

import yaml

from worldtree.compile.diagnostics import Diagnostic

try:  # the C parser is ~10x faster on large pipelines (the 830 KB benchmark file)
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

Path = tuple[str | int, ...]
Positions = dict[Path, tuple[int, int]]

_constructor = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


class YamlSourceError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic
        super().__init__(diagnostic.render())


def load_yaml(text: str, filename: str) -> tuple[Any, Positions, list[Diagnostic]]:
    """Parse ``text``; returns (data, positions, diagnostics such as duplicate keys).

    Raises YamlSourceError for text that is not YAML at all.
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        message = f"malformed YAML: {problem}; fix the syntax at this point (indentation, quotes, brackets)"
        raise YamlSourceError(Diagnostic("error", "yaml", message, filename, line, col)) from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(Diagnostic("error", "yaml", f"malformed YAML: {exc}", filename)) from None
    positions: Positions = {}
    diagnostics: list[Diagnostic] = []
    if root is None:
        return None, positions, diagnostics
    data = _build(root, (), positions, diagnostics, filename)
    return data, positions, diagnostics


def _build(node: yaml.Node, path: Path, positions: Positions, diags: list[Diagnostic], filename: str) -> Any:
    positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _STR:
            return node.value
        return _constructor.construct_object(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), positions, diags, filename) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:  # `<<: *anchor` — earlier explicit keys win, as YAML says
                for key, value in _merge_sources(value_node, path, positions, diags, filename):
                    out.setdefault(key, value)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                diags.append(Diagnostic("error", "yaml", "mapping keys must be plain strings", filename,
                                        key_node.start_mark.line + 1, key_node.start_mark.column + 1))
                continue
            key = key_node.value
            if key in seen:
                diags.append(Diagnostic(
                    "error", "duplicate-key", f"duplicate key {key!r}; YAML keeps only one, remove the other",
                    filename, key_node.start_mark.line + 1, key_node.start_mark.column + 1))
            seen.add(key)
            out[key] = _build(value_node, (*path, key), positions, diags, filename)
            # Point errors about a key at the key itself, errors about its value at the value.
            positions[(*path, key, "__key__")] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return out
    raise AssertionError(f"unknown YAML node {node!r}")  # pragma: no cover


def _merge_sources(node: yaml.Node, path: Path, positions: Positions, diags: list[Diagnostic],
                   filename: str) -> list[tuple[str, Any]]:
    sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
    pairs: list[tuple[str, Any]] = []
    for source in sources:
        value = _build(source, path, positions, diags, filename)
        if isinstance(value, dict):
            pairs.extend(value.items())
    return pairs
