"""YAML -> plain Python data, and a way back from each value's path to its place in the file.

PyYAML's composer gives every node a start mark. Values are built from the node tree without
their paths; :class:`Positions` walks the same tree only when a diagnostic asks where a value is
(building 100,000 path tuples up front cost a third of loading the 2,000-job benchmark file).
Mapping keys stay strings exactly as written: YAML 1.1 would turn ``on:`` (seed 002's trigger
key) into ``True``.

Hostile input is bounded: a document over :data:`MAX_DOCUMENT_BYTES` is refused before parsing,
the composer stops at :data:`MAX_NODES` nodes (each costs ~800 bytes with its marks: 15 MB of
``- {}`` lines took 2.3 GB), and aliases may expand to at most :data:`MAX_ALIAS_NODES` nodes in
all (a "billion laughs" file of 394 bytes otherwise expands to gigabytes). All are located
errors, not crashes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from worldtree.compile.diagnostics import Diagnostic

try:  # the C parser is ~10x faster on large pipelines (the 830 KB benchmark file)
    _Base: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Base = yaml.SafeLoader

Path = tuple[str | int, ...]

#: Bigger documents are refused unread (the 2,000-job benchmark file is 830 KB).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: Nodes built again because an alias (or a ``<<:`` merge) points at them. YAML anchors for shared
#: defaults stay far below this; a bomb passes it in milliseconds.
MAX_ALIAS_NODES = 200_000
#: Nodes one document may hold: ~400 MB of node tree. The 2,000-job benchmark file has 115,405.
MAX_NODES = 500_000
#: Nesting deeper than this is refused (Python's recursion would give out first).
MAX_DEPTH = 200

_constructor = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"
#: The safe loader's YAML 1.1 implicit types (bool, int, float, null, timestamp, merge) by first character.
_ANY_FIRST: tuple[tuple[str, Any], ...] = tuple(_Base.yaml_implicit_resolvers.get(None, []))
_IMPLICIT: dict[str, tuple[tuple[str, Any], ...]] = {
    first: tuple(resolvers) + _ANY_FIRST
    for first, resolvers in _Base.yaml_implicit_resolvers.items() if first is not None}


class _Loader(_Base):
    """The safe loader with the stock tag resolution done without its per-node overhead.

    The C composer asks Python for every node's tag; the stock resolver's answer (a resolver list
    built per call, path-resolver hooks the safe loader never registers) was a fifth of the time.
    Same regular expressions, same tags: explicit tags (``!!int "1"``, ``!custom``) are kept.
    """

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    nodes = 0

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        # The composer asks once per node, before building it: the cheapest place to count them.
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooManyNodes
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], _ANY_FIRST):
                    if regexp.match(value):
                        return tag
            return _STR
        return _SEQ if kind is SequenceNode else _MAP


class _TooManyNodes(Exception):
    pass


class YamlSourceError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic
        super().__init__(diagnostic.render())


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a document becomes objects.

    Loading builds a few hundred thousand objects that live to the end (nodes, values, models);
    every collection would walk all of them again (half the load time of the benchmark file),
    and none of them forms a cycle to collect.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
    except _TooManyNodes:
        raise YamlSourceError(Diagnostic("error", "too-many-nodes", f"the document holds more than {MAX_NODES} "
                                         "values; split the pipeline into smaller files", filename,
                                         *_node_mark(text, MAX_NODES + 1))) from None
    diagnostics: list[Diagnostic] = []
    if root is None:
        return None, Positions(None), diagnostics
    data = _Builder(filename, diagnostics).build(root, 0)
    return data, Positions(root), diagnostics


def _node_mark(text: str, number: int) -> tuple[int, int]:
    """Where the ``number``-th node starts: events stream, so finding it costs no memory."""
    seen = 0
    for event in yaml.parse(text, Loader=_Base):
        if isinstance(event, yaml.NodeEvent) and not isinstance(event, yaml.AliasEvent):
            seen += 1
            if seen == number and event.start_mark is not None:
                return event.start_mark.line + 1, event.start_mark.column + 1
    return 1, 1  # pragma: no cover - the composer counted that many


def too_large(size: int, filename: str) -> Diagnostic:
    return Diagnostic("error", "too-large", f"the document is {size} bytes, over the limit of {MAX_DOCUMENT_BYTES}; "
                      "split the pipeline into smaller files", filename)


def _at(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _error(code: str, message: str, filename: str, node: Node) -> YamlSourceError:
    return YamlSourceError(Diagnostic("error", code, message, filename, *_at(node)))


def _merge_sources(node: Node) -> list[Node]:
    """The mappings a ``<<:`` value names: one alias, or a list of them."""
    return list(node.value) if isinstance(node, SequenceNode) else [node]


class Positions:
    """Data path -> (line, col) of the value there, or of its key for a path ending in ``"__key__"``.

    Looked up in the node tree on demand: a path is followed the way the data was built (the
    last of duplicate keys, explicit keys before ``<<:`` merges, the first merge source that has
    the key), so a merged value points at the anchor that wrote it.
    """

    def __init__(self, root: Node | None) -> None:
        self._root = root

    def __contains__(self, path: object) -> bool:
        return isinstance(path, tuple) and self._find(path) is not None

    def __getitem__(self, path: Path) -> tuple[int, int]:
        node = self._find(path)
        if node is None:
            raise KeyError(path)
        return _at(node)

    def get(self, path: Path, default: tuple[int, int] | None = None) -> tuple[int, int] | None:
        node = self._find(path)
        return default if node is None else _at(node)

    def _find(self, path: tuple[Any, ...]) -> Node | None:
        node = self._root
        want_key = bool(path) and path[-1] == "__key__"
        parts = path[:-1] if want_key else path
        for i, part in enumerate(parts):
            if node is None:
                return None
            pair = _child(node, part, 0)
            if pair is None:
                return None
            key_node, node = pair
            if want_key and i == len(parts) - 1:
                return key_node
        return None if want_key else node


def _child(node: Node, part: Any, depth: int) -> tuple[Node | None, Node] | None:
    """(key node, value node) of ``part`` in a mapping or sequence node, or None."""
    if isinstance(node, SequenceNode):
        if type(part) is int and 0 <= part < len(node.value):
            return None, node.value[part]
        return None
    if not isinstance(node, MappingNode) or depth > MAX_DEPTH:
        return None
    for key_node, value_node in reversed(node.value):
        if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE and key_node.value == part:
            return key_node, value_node
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            for source in _merge_sources(value_node):
                found = _child(source, part, depth + 1)
                if found is not None:
                    return found
    return None


class _Builder:
    """Node tree -> data. A node met a second time was reached through an alias: its copy counts
    against MAX_ALIAS_NODES, so expansion stops at the bound, not when memory runs out."""

    def __init__(self, filename: str, diags: list[Diagnostic]) -> None:
        self.filename = filename
        self.diags = diags
        self.seen: set[int] = set()
        self.copies = 0
        self.copying = 0  # > 0 while inside a node reached through an alias

    def build(self, node: Node, depth: int) -> Any:
        if node.__class__ is ScalarNode:  # the hot path: most nodes; a scalar alias cannot multiply
            if self.copying:
                self._count(node)
            return self._scalar(node)
        if depth > MAX_DEPTH:  # also stops an alias to its own ancestor (`a: &a [*a]`)
            raise _error("too-deep", f"the document nests deeper than {MAX_DEPTH} levels; flatten it (or remove "
                         "an alias that refers to itself)", self.filename, node)
        key = id(node)
        if key in self.seen or self.copying:
            self._count(node)
            self.copying += 1
            try:
                return self._collection(node, depth)
            finally:
                self.copying -= 1
        self.seen.add(key)
        return self._collection(node, depth)

    def _count(self, node: Node) -> None:
        self.copies += 1
        if self.copies > MAX_ALIAS_NODES:
            raise _error("alias-bomb", f"aliases expand to more than {MAX_ALIAS_NODES} nodes here; a document "
                         "this repetitive is refused (a YAML \"billion laughs\"): write the values out or "
                         "use fewer nested aliases", self.filename, node)

    def _scalar(self, node: Node) -> Any:
        value = node.value
        if "\x00" in value:
            self._nul(node)
        if node.tag == _STR:
            return value
        try:
            return _constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise _error("yaml", f"cannot read this value: {problem}; quote it to make it a string",
                         self.filename, node) from None

    def _collection(self, node: Node, depth: int) -> Any:
        depth += 1
        if isinstance(node, SequenceNode):
            out_list: list[Any] = []
            append = out_list.append
            for item in node.value:
                # Plain strings (a `needs` list of 50 names) skip the call; copies still count.
                if item.__class__ is ScalarNode and item.tag == _STR and not self.copying and "\x00" not in item.value:
                    append(item.value)
                else:
                    append(self.build(item, depth))
            return out_list
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            explicit: set[str] = set()
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:  # `<<: *anchor` — earlier explicit keys win, as YAML says
                    for source in _merge_sources(value_node):
                        value = self.build(source, depth)
                        if isinstance(value, dict):
                            for k, v in value.items():
                                out.setdefault(k, v)
                    continue
                if key_node.__class__ is not ScalarNode:
                    self.diags.append(Diagnostic("error", "yaml", "mapping keys must be plain strings",
                                                 self.filename, *_at(key_node)))
                    continue
                key = key_node.value
                if "\x00" in key:
                    self._nul(key_node)
                if key in explicit:
                    self.diags.append(Diagnostic(
                        "error", "duplicate-key", f"duplicate key {key!r}; YAML keeps only one, remove the other",
                        self.filename, *_at(key_node)))
                explicit.add(key)
                out[key] = self.build(value_node, depth)
            return out
        raise AssertionError(f"unknown YAML node {node!r}")  # pragma: no cover

    def _nul(self, node: Node) -> None:
        """NUL cannot reach a process (argv, env), a file name or the store: refuse it where it is."""
        self.diags.append(Diagnostic("error", "control-character", f"NUL character in {node.value!r}; remove it",
                                     self.filename, *_at(node)))
