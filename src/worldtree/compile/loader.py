"""Load a pipeline file: YAML -> PipelineSpec, with every problem reported as ``file:line:col``.

All diagnostics are collected before anything is raised: a user fixes a file in one pass.
"""

from __future__ import annotations

import difflib
import functools
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from worldtree.compile.diagnostics import Diagnostic
from worldtree.compile.jobs import JobEntry, job_dependencies, job_entries
from worldtree.compile.op_steps import check_op
from worldtree.compile.yaml_source import (
    MAX_DOCUMENT_BYTES,
    Positions,
    YamlSourceError,
    load_yaml,
    paused_gc,
    too_large,
)
from worldtree.errors import SpecError
from worldtree.model.conditions import ConditionError, parse
from worldtree.model.engines import check_engine
from worldtree.model.graph import slug
from worldtree.model.shell import check_shell
from worldtree.model.spec import PipelineSpec


@dataclass
class LoadedPipeline:
    spec: PipelineSpec
    source: str
    warnings: list[Diagnostic] = field(default_factory=list)


def load_pipeline(path: str | Path, *, strict: bool = False) -> LoadedPipeline:
    """Read and check a pipeline file. Raises SpecError carrying every diagnostic found."""
    filename = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_DOCUMENT_BYTES:  # refuse before reading it into memory
            raise SpecError([too_large(size, filename)])
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Diagnostic("error", "file", "no such file; check the path", filename)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Diagnostic("error", "file", f"cannot read the file: {exc}", filename)]) from None
    return load_pipeline_text(text, filename, strict=strict)


def load_pipeline_text(text: str, filename: str = "<string>", *, strict: bool = False) -> LoadedPipeline:
    with paused_gc():
        return _load(text, filename, strict)


def _load(text: str, filename: str, strict: bool) -> LoadedPipeline:
    try:
        data, positions, diags = load_yaml(text, filename)
    except YamlSourceError as exc:
        raise SpecError([exc.diagnostic]) from None
    locate = _Locator(filename, positions)
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}"
        raise SpecError([Diagnostic("error", "shape",
                                    f"the document is {what}; a pipeline is a mapping with `stages` or `jobs`",
                                    filename, *locate.at(()))])
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        diags.extend(_validation_diagnostics(exc, locate))
        raise SpecError(_sorted(diags)) from None
    entries = job_entries(spec)
    diags.extend(_unknown_keys(spec, (), locate, strict))
    diags.extend(_unsupported_seed_fields(entries, locate))
    diags.extend(_check_names_and_needs(spec, entries, locate))
    diags.extend(_literal_engine_credentials(data, (), locate))
    diags.extend(_engines_and_shells(spec, entries, locate))
    diags.extend(_op_steps(spec, entries, locate))
    if any(d.severity == "error" for d in diags):
        raise SpecError(_sorted(diags))
    return LoadedPipeline(spec=spec, source=filename, warnings=_sorted(diags))


def _sorted(diags: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diags, key=lambda d: (d.line, d.col, d.message))


class _Locator:
    """Maps a data path (as pydantic reports it) to the nearest line:col we know."""

    def __init__(self, filename: str, positions: Positions) -> None:
        self.filename = filename
        self.positions = positions

    def at(self, path: tuple[Any, ...], *, key: bool = False) -> tuple[int, int]:
        if key and (*path, "__key__") in self.positions:
            return self.positions[(*path, "__key__")]
        clean = tuple(p for p in path if isinstance(p, int | str))
        for end in range(len(clean), -1, -1):
            if clean[:end] in self.positions:
                return self.positions[clean[:end]]
        return (1, 1)

    def error(self, code: str, message: str, path: tuple[Any, ...], *, key: bool = False,
              severity: str = "error") -> Diagnostic:
        return Diagnostic(severity, code, message, self.filename, *self.at(path, key=key))  # type: ignore[arg-type]


def _validation_diagnostics(exc: ValidationError, locate: _Locator) -> list[Diagnostic]:
    out = []
    seen: set[tuple[Any, ...]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        # Union members add their type name to loc ("str", "dict[str,any]"); keep the data path.
        path = tuple(p for p in loc if isinstance(p, int) or (isinstance(p, str) and "[" not in p
                                                            and p not in ("str", "int", "float", "bool")))
        dotted = _dotted(path)
        kind = err["type"]
        msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if kind == "missing":
            message = f"missing required field `{path[-1]}` in {_dotted(path[:-1]) or 'the document'}"
        elif kind in ("literal_error", "enum"):
            message = f"{dotted}: {msg[0].lower()}{msg[1:]}, got {err.get('input')!r}"
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            message = f"{dotted}: wrong type: {msg[0].lower()}{msg[1:]}, got {_typename(err.get('input'))}"
        else:
            message = f"{dotted}: {msg}" if dotted else msg
        key = (path, message)
        if key in seen:
            continue
        seen.add(key)
        out.append(locate.error(kind, message, path, key=kind == "missing"))
    # A union may report the same path once per member; keep the most specific one.
    return out


def _typename(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _known_fields(model: BaseModel) -> list[str]:
    """Keys to suggest; ``state`` (the seed tool's run record) is accepted but never suggested."""
    return [f.alias or name for name, f in type(model).model_fields.items() if not f.exclude]


def _unknown_keys(model: BaseModel, path: tuple[Any, ...], locate: _Locator, strict: bool) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for key in model.model_extra or {}:
        known = _known_fields(model)
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else f"known keys: {', '.join(sorted(known))}"
        where = _dotted(path) or "the pipeline"
        out.append(locate.error("unknown-key", f"unknown key `{key}` in {where}; {hint}", (*path, key),
                                key=True, severity="error" if strict else "warning"))
    for name, key in _nested_fields(type(model)):
        value = getattr(model, name)
        sub = (*path, key)
        if isinstance(value, BaseModel):
            out.extend(_unknown_keys(value, sub, locate, strict))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    out.extend(_unknown_keys(item, (*sub, i), locate, strict))
        elif isinstance(value, dict):
            for k, item in value.items():
                if isinstance(item, BaseModel):
                    out.extend(_unknown_keys(item, (*sub, k), locate, strict))
    return out


@functools.cache
def _nested_fields(cls: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, key) of the fields whose type names a model: only they can hold unknown keys
    further down (a `needs` list of 50 names need not be looked through, 2,000 times)."""
    return tuple((name, fld.alias or name) for name, fld in cls.model_fields.items()
                 if _names_model(fld.annotation))


def _names_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_names_model(arg) for arg in typing.get_args(annotation))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _check_name(name: str, what: str, path: tuple[Any, ...], locate: _Locator) -> list[Diagnostic]:
    """Names reach terminals, paths and ids: control characters (NUL, newline, ESC) are refused."""
    if _CONTROL.search(name) and "\x00" not in name:  # the YAML reader reports NUL wherever it is
        return [locate.error("control-character", f"{what} name {name!r} contains a control character; "
                             "use printable characters only", path)]
    return []


def _unsupported_seed_fields(entries: list[JobEntry], locate: _Locator) -> list[Diagnostic]:
    out = []
    for entry in entries:
        for s, step in enumerate(entry.job.steps):
            for field_name in ("data_dir_inner", "data_dir_outer"):
                if getattr(step, field_name) is not None:
                    out.append(locate.error(
                        "unsupported", f"`{field_name}` is not supported by worldtree and is ignored; mount the "
                        "data another way (a step that copies it, or the docker image)",
                        (*entry.path, "steps", s, field_name), key=True, severity="warning"))
    return out


def _check_names_and_needs(spec: PipelineSpec, entries: list[JobEntry], locate: _Locator) -> list[Diagnostic]:
    out: list[Diagnostic] = _check_name(spec.name, "pipeline", ("name",), locate)
    names = dict.fromkeys(e.name for e in entries)  # in document order, for the suggestions
    if spec.stages is not None:
        seen_stage: set[str] = set()
        for i, stage in enumerate(spec.stages):
            out.extend(_check_name(stage.name, "stage", ("stages", i, "name"), locate))
            if stage.name in seen_stage:
                out.append(locate.error("duplicate-name", f"duplicate stage name {stage.name!r}; "
                                        "stage names must be unique", ("stages", i, "name")))
            seen_stage.add(stage.name)
    seen_job: dict[str, tuple[Any, ...]] = {}
    for entry in entries:
        out.extend(_check_name(entry.name, "job", entry.path if spec.jobs is not None else (*entry.path, "name"),
                               locate))
        if entry.name in seen_job:
            out.append(locate.error("duplicate-name", f"duplicate job name {entry.name!r}; job names must be "
                                    "unique across the pipeline to be referenced by `needs`",
                                    (*entry.path, "name")))
        seen_job.setdefault(entry.name, entry.path)
        if entry.job.if_ is not None:
            out.extend(_check_condition(entry.job.if_, (*entry.path, "if"), locate))
        step_names: set[str] = set()
        for s, step in enumerate(entry.job.steps):
            if step.if_ is not None:
                out.extend(_check_condition(step.if_, (*entry.path, "steps", s, "if"), locate))
            if step.name is None:
                continue
            out.extend(_check_name(step.name, "step", (*entry.path, "steps", s, "name"), locate))
            if step.name in step_names:
                out.append(locate.error("duplicate-name", f"duplicate step name {step.name!r} in job "
                                        f"{entry.name!r}; step names must be unique within a job",
                                        (*entry.path, "steps", s, "name")))
            step_names.add(step.name)
        needs = entry.job.needs
        if entry.name in needs or not all(map(names.__contains__, needs)):
            out.extend(_check_needs(entry, names, locate))
    if out:
        return out
    out.extend(_check_node_ids(spec, entries, locate))
    if out:
        return out
    deps = job_dependencies(spec, entries)
    cycle = _find_cycle(deps)
    if cycle:
        first = next(e for e in entries if e.name == cycle[0])
        idx = first.job.needs.index(cycle[1]) if cycle[1] in first.job.needs else None
        where = (*first.path, "needs", idx) if idx is not None else first.path
        out.append(locate.error("cycle", "dependency cycle: " + " -> ".join(cycle)
                                + "; remove one of these `needs`", where))
    return out


def _check_needs(entry: JobEntry, names: dict[str, None], locate: _Locator) -> list[Diagnostic]:
    """Each of a job's `needs` that names no job, or the job itself."""
    out = []
    for n, need in enumerate(entry.job.needs):
        if need not in names:
            close = difflib.get_close_matches(need, list(names), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "`needs` takes names of jobs in this file"
            out.append(locate.error("unknown-need", f"job {entry.name!r} needs {need!r}, which is not a "
                                    f"job of this pipeline; {hint}", (*entry.path, "needs", n)))
        elif need == entry.name:
            out.append(locate.error("cycle", f"job {entry.name!r} needs itself; remove it from `needs`",
                                    (*entry.path, "needs", n)))
    return out


def _check_node_ids(spec: PipelineSpec, entries: list[JobEntry], locate: _Locator) -> list[Diagnostic]:
    """Names that differ only in case or punctuation give the same node id (``Build Job``, ``build-job``)."""
    out: list[Diagnostic] = []
    stage_slugs: dict[str, str] = {}
    for i, stage in enumerate(spec.stages or []):
        other = stage_slugs.setdefault(slug(stage.name), stage.name)
        if other != stage.name:
            out.append(locate.error("duplicate-id", f"stage names {other!r} and {stage.name!r} give the same id "
                                    f"{slug(stage.name)!r}; rename one of them", ("stages", i, "name")))
    job_slugs: dict[str, str] = {}
    for entry in entries:
        key = f"{slug(entry.stage.name)}/{slug(entry.name)}" if entry.stage is not None else slug(entry.name)
        other = job_slugs.setdefault(key, entry.name)
        if other != entry.name:
            out.append(locate.error("duplicate-id", f"job names {other!r} and {entry.name!r} give the same id "
                                    f"{key!r}; rename one of them", (*entry.path, "name")))
        step_slugs: dict[str, str] = {}
        for s, step in enumerate(entry.job.steps):
            name = step.name or f"step-{s + 1}"  # as the compiler names an unnamed step
            taken = step_slugs.get(slug(name))
            step_slugs.setdefault(slug(name), name)
            if taken is not None:
                out.append(locate.error("duplicate-id", f"step names {taken!r} and {name!r} in job {entry.name!r} "
                                        f"give the same id {slug(name)!r}; rename one of them",
                                        (*entry.path, "steps", s, "name")))
    return out


_LITERAL_CREDENTIAL = re.compile(r"^(ssh|idps?)://[^:@/]*:(?!\$\{)[^@]+@")


def _literal_engine_credentials(data: Any, path: tuple[Any, ...], locate: _Locator) -> list[Diagnostic]:
    """Warn where an ``engine:`` URL or ``image_registry_password`` carries a credential in clear text."""
    out: list[Diagnostic] = []
    if isinstance(data, dict):
        for key, value in data.items():
            literal = (key == "engine" and isinstance(value, str) and _LITERAL_CREDENTIAL.match(value)) or (
                key == "image_registry_password" and isinstance(value, str) and value and "${" not in value)
            if literal:
                out.append(locate.error(
                    "literal-credential", f"a password or key is written in `{key}:`; worldtree masks it in "
                    "output and stored runs, but anyone reading this file sees it (and `worldtree retry` cannot "
                    "use it): write ${NAME} and list NAME in the job's `secrets:`", (*path, key), severity="warning"))
            elif isinstance(value, dict | list):  # only containers hold more keys
                out.extend(_literal_engine_credentials(value, (*path, key), locate))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            if isinstance(item, dict | list):  # skip scalar lists (`needs` can hold 100,000 names)
                out.extend(_literal_engine_credentials(item, (*path, i), locate))
    return out


def _engines_and_shells(spec: PipelineSpec, entries: list[JobEntry], locate: _Locator) -> list[Diagnostic]:
    """``engine:`` and ``shell:`` values no backend could run (checks owned by model.engines/shell)."""
    levels: list[tuple[Any, tuple[Any, ...]]] = [(spec, ())]
    levels += [(stage, ("stages", i)) for i, stage in enumerate(spec.stages or [])]
    for entry in entries:
        levels += [(entry.job, entry.path), *((st, (*entry.path, "steps", s)) for s, st in enumerate(entry.job.steps))]
    out = []
    for level, path in levels:
        for key, check in (("engine", check_engine), ("shell", check_shell)):
            problem = check(getattr(level, key)) if getattr(level, key) is not None else None
            if problem:
                out.append(locate.error(key, problem, (*path, key)))
    return out


def _op_steps(spec: PipelineSpec, entries: list[JobEntry], locate: _Locator) -> list[Diagnostic]:
    """``op:`` steps: unknown operations, bad ``with:`` arguments, a target they cannot run on."""
    out = []
    for entry in entries:
        for s, step in enumerate(entry.job.steps):
            if step.op is None:
                continue
            engine = _pick_engine(step, entry, spec)
            for sub, message, key in check_op(step, engine):
                out.append(locate.error("op", message, (*entry.path, "steps", s, *sub), key=key))
    return out


def _pick_engine(step: Any, entry: JobEntry, spec: PipelineSpec) -> str | None:
    for level in (step, entry.job, entry.stage, spec):
        if level is not None and level.engine is not None:
            return str(level.engine)
    if entry.job.hosts:
        return "hosts: (fan-out)"
    images = (step.image, entry.job.image, entry.stage.image if entry.stage else None, spec.image)
    return "docker" if any(images) else None


def _check_condition(expression: str, path: tuple[Any, ...], locate: _Locator) -> list[Diagnostic]:
    try:
        parse(expression)
    except ConditionError as exc:
        return [locate.error("condition", str(exc), path)]
    return []


def _find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """A cycle as a path ``a -> b -> ... -> a`` (following needs), or None. Iterative DFS.

    Most files list a job after the jobs it needs: then there is no cycle, and checking that
    (at C speed, 97,500 needs in a few milliseconds) spares the walk.
    """
    order = {name: i for i, name in enumerate(deps)}
    try:
        if all(max(map(order.__getitem__, children), default=-1) < i for i, children in enumerate(deps.values())):
            return None
    except KeyError:  # a need outside the graph: the walk below handles it
        pass
    color: dict[str, int] = dict.fromkeys(deps, 0)
    for start in deps:
        if color[start]:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        trail: list[str] = [start]
        color[start] = 1
        while stack:
            node, i = stack[-1]
            children = deps.get(node, [])
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                if color.get(child, 0) == 1:
                    return [*trail[trail.index(child):], child]
                if color.get(child, 0) == 0:
                    color[child] = 1
                    stack.append((child, 0))
                    trail.append(child)
            else:
                color[node] = 2
                stack.pop()
                trail.pop()
    return None
