"""``worldtree server --config FILE``: a YAML mapping with the same keys as the flags.

Keys are the flags' names without the dashes (``data_dir`` or ``data-dir``, ``max_concurrent``,
``tls_cert``, ...). What decides a setting, strongest first: the flag, its environment variable
(``WORLDTREE_PORT``, ...), the file, the default. Each value is checked by the flag's own type and
range, so a file can hold nothing a flag would refuse; a wrong one is reported at its line and
column (exit 2), like a pipeline's.
"""

from __future__ import annotations

from typing import Any

import typer

from worldtree.compile.diagnostics import Diagnostic
from worldtree.compile.yaml_source import YamlSourceError, load_yaml
from worldtree.errors import SpecError, UsageError

#: Parameters a file may not set (the file itself; the click context).
NOT_IN_FILE = frozenset({"config_file", "ctx"})
#: Settings whose values are a fixed set (the flags check these after parsing, the file here, located).
CHOICES = {"log_format": ("json", "console"), "log_level": ("debug", "info", "warning", "error"),
           "jobs_on": ("auto", "agents")}


def merged(ctx: typer.Context, path: str) -> dict[str, Any]:
    """``ctx.params`` with the file's values for every parameter left at its default."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise UsageError(f"--config {path}: {exc.strerror}; give the path of a YAML file") from None
    try:
        data, positions, diagnostics = load_yaml(text, path)
    except YamlSourceError as exc:
        raise SpecError([exc.diagnostic]) from None
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise SpecError(errors)
    if data is None:
        return dict(ctx.params)
    if not isinstance(data, dict):
        raise SpecError([Diagnostic("error", "config", "the file must be a mapping of setting: value "
                                    "(e.g. `port: 8080`)", path, 1, 1)])
    params = {p.name: p for p in ctx.command.params if p.name and p.name not in NOT_IN_FILE}
    values = dict(ctx.params)
    problems = []
    for key, value in data.items():
        name = str(key).replace("-", "_")
        line, col = positions.get((key, "__key__"), (1, 1)) or (1, 1)
        param = params.get(name)
        if param is None:
            known = ", ".join(sorted(params))
            problems.append(Diagnostic("error", "config", f"unknown setting {key!r}; one of: {known}", path,
                                       line, col))
            continue
        raw = value if value is None or isinstance(value, bool) else str(value)
        try:  # the flag's own conversion and range check
            converted = param.process_value(ctx, raw) if raw is not None else None
        except typer.BadParameter as exc:
            vline, vcol = positions.get((key,), (line, col)) or (line, col)
            problems.append(Diagnostic("error", "config", f"{key}: {value!r}: {exc.message}", path, vline, vcol))
            continue
        choices = CHOICES.get(name)
        if choices is not None and converted is not None and converted not in choices:
            vline, vcol = positions.get((key,), (line, col)) or (line, col)
            problems.append(Diagnostic("error", "config", f"{key}: {value!r}: one of {', '.join(choices)}", path,
                                       vline, vcol))
            continue
        source = ctx.get_parameter_source(name)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            values[name] = converted
    if problems:
        raise SpecError(problems)
    return values
