"""YAML -> plain Python data plus a map from each value's path to its position in the file.

PyYAML's composer gives every node a start mark; constructing the data ourselves from the
node tree keeps those marks, so the loader can point any later error at ``file:line:col``.
Mapping keys stay strings exactly as written: YAML 1.1 would turn ``on:`` (seed 002's trigger
key) into ``True``.

Hostile input is bounded: a document over :data:`MAX_DOCUMENT_BYTES` is refused before parsing,
and aliases may expand to at most :data:`MAX_ALIAS_NODES` nodes in all (a "billion laughs" file
of 394 bytes otherwise expands to gigabytes). Both are located errors, not crashes.
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

#: Bigger documents are refused unread (the 2,000-job benchmark file is 830 KB).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: Nodes built again because an alias (or a ``<<:`` merge) points at them. YAML anchors for shared
#: defaults stay far below this; a bomb passes it in milliseconds.
MAX_ALIAS_NODES = 200_000
#: Nesting deeper than this is refused (Python's recursion would give out first).
MAX_DEPTH = 200

_constructor = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


class YamlSourceError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic
        super().__init__(diagnostic.render())


def load_yaml(text: str, filename: str) -> tuple[Any, Positions, list[Diagnostic]]:
    """Parse ``text``; returns (data, positions, diagnostics such as duplicate keys).

    Raises YamlSourceError for text that is not YAML at all, or past the bounds above.
    """
    if len(text) > MAX_DOCUMENT_BYTES // 4:  # characters: at most 4 bytes each
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_DOCUMENT_BYTES:
            raise YamlSourceError(too_large(size, filename))
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
    except RecursionError:
        raise YamlSourceError(Diagnostic("error", "yaml", f"the document nests deeper than {MAX_DEPTH} levels; "
                                         "flatten it", filename)) from None
    positions: Positions = {}
    diagnostics: list[Diagnostic] = []
    if root is None:
        return None, positions, diagnostics
    data = _Builder(filename, positions, diagnostics).build(root, ())
    return data, positions, diagnostics


def too_large(size: int, filename: str) -> Diagnostic:
    return Diagnostic("error", "too-large", f"the document is {size} bytes, over the limit of {MAX_DOCUMENT_BYTES}; "
                      "split the pipeline into smaller files", filename)


def _error(code: str, message: str, filename: str, node: yaml.Node) -> YamlSourceError:
    return YamlSourceError(Diagnostic("error", code, message, filename, node.start_mark.line + 1,
                                      node.start_mark.column + 1))


class _Builder:
    """Node tree -> data. A node met a second time was reached through an alias: its copy counts
    against MAX_ALIAS_NODES, so expansion stops at the bound, not when memory runs out."""

    def __init__(self, filename: str, positions: Positions, diags: list[Diagnostic]) -> None:
        self.filename = filename
        self.positions = positions
        self.diags = diags
        self.seen: set[int] = set()
        self.copies = 0
        self.copying = 0  # > 0 while inside a node reached through an alias

    def build(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.ScalarNode):  # the hot path: most nodes; a scalar alias cannot multiply
            if self.copying:
                self._count(node)
            return self._value(node, path)
        if len(path) > MAX_DEPTH:  # also stops an alias to its own ancestor (`a: &a [*a]`)
            raise _error("too-deep", f"the document nests deeper than {MAX_DEPTH} levels; flatten it (or remove "
                         "an alias that refers to itself)", self.filename, node)
        key = id(node)
        if key in self.seen or self.copying:
            self._count(node)
            self.copying += 1
            try:
                return self._value(node, path)
            finally:
                self.copying -= 1
        self.seen.add(key)
        return self._value(node, path)

    def _count(self, node: yaml.Node) -> None:
        self.copies += 1
        if self.copies > MAX_ALIAS_NODES:
            raise _error("alias-bomb", f"aliases expand to more than {MAX_ALIAS_NODES} nodes here; a document "
                         "this repetitive is refused (a YAML \"billion laughs\"): write the values out or "
                         "use fewer nested aliases", self.filename, node)

    def _value(self, node: yaml.Node, path: Path) -> Any:
        filename, positions, diags = self.filename, self.positions, self.diags
        positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            if "\x00" in node.value:
                self._nul(node)
            if node.tag == _STR:
                return node.value
            try:
                return _constructor.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, OverflowError) as exc:
                problem = getattr(exc, "problem", None) or str(exc)
                raise _error("yaml", f"cannot read this value: {problem}; quote it to make it a string",
                             filename, node) from None
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:  # `<<: *anchor` — earlier explicit keys win, as YAML says
                    for key, value in self._merge_sources(value_node, path):
                        out.setdefault(key, value)
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    diags.append(Diagnostic("error", "yaml", "mapping keys must be plain strings", filename,
                                            key_node.start_mark.line + 1, key_node.start_mark.column + 1))
                    continue
                key = key_node.value
                if "\x00" in key:
                    self._nul(key_node)
                if key in seen:
                    diags.append(Diagnostic(
                        "error", "duplicate-key", f"duplicate key {key!r}; YAML keeps only one, remove the other",
                        filename, key_node.start_mark.line + 1, key_node.start_mark.column + 1))
                seen.add(key)
                out[key] = self.build(value_node, (*path, key))
                # Point errors about a key at the key itself, errors about its value at the value.
                positions[(*path, key, "__key__")] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            return out
        raise AssertionError(f"unknown YAML node {node!r}")  # pragma: no cover

    def _nul(self, node: yaml.Node) -> None:
        """NUL cannot reach a process (argv, env), a file name or the store: refuse it where it is."""
        self.diags.append(Diagnostic("error", "control-character", f"NUL character in {node.value!r}; remove it",
                                     self.filename, node.start_mark.line + 1, node.start_mark.column + 1))

    def _merge_sources(self, node: yaml.Node, path: Path) -> list[tuple[str, Any]]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        pairs: list[tuple[str, Any]] = []
        for source in sources:
            value = self.build(source, path)
            if isinstance(value, dict):
                pairs.extend(value.items())
        return pairs
