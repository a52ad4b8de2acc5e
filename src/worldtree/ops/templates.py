"""Jinja2 for playbooks: sandboxed, ``StrictUndefined``, errors located at the template's own line.

Templates are rendered on the controller while planning, before anything changes on any host,
so a missing variable stops the apply with ``templates/app.conf.j2:7:1: ...`` and exit 2.
Strings in a task's ``with:`` that contain ``{{`` or ``{%`` are rendered the same way (the
error then points at the ``with:`` value in the playbook).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from worldtree.compile.diagnostics import Diagnostic

__all__ = ["TemplateError", "Templates", "is_template", "shown_path"]


def shown_path(path: str | Path) -> str:
    """A path as messages show it: relative to the working directory when under it."""
    absolute = os.path.abspath(path)
    rel = os.path.relpath(absolute)
    return absolute if rel.startswith("..") else rel


class TemplateError(Exception):
    """A template problem as a diagnostic; ``diagnostic.file``/``line`` point into the template."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.render())
        self.diagnostic = diagnostic


def is_template(value: str) -> bool:
    return "{{" in value or "{%" in value


class Templates:
    """Templates under ``root`` (the playbook's folder) and inline strings, one environment."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.env = SandboxedEnvironment(loader=jinja2.FileSystemLoader(str(self.root)),
                                        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                        autoescape=False)

    def render_file(self, src: str, context: Mapping[str, Any]) -> str:
        """Render template ``src`` (relative to the playbook's folder)."""
        shown = shown_path(self.root / src)
        try:
            template = self.env.get_template(src)
        except jinja2.TemplateNotFound:
            raise TemplateError(Diagnostic("error", "template", f"template {src!r} not found under "
                                           f"{self.root}; check `src`", shown)) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(Diagnostic("error", "template", f"template syntax: {exc.message}", shown,
                                           exc.lineno or 1, 1)) from None
        return self._render(template, context, shown, template.filename or "", 1)

    def render_string(self, text: str, context: Mapping[str, Any], file: str, line: int, col: int) -> str:
        """Render an inline template; errors are located at ``file:line:col`` (where the string is)."""
        try:
            template = self.env.from_string(text)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(Diagnostic("error", "template", f"template syntax: {exc.message}", file,
                                           line, col)) from None
        return self._render(template, context, file, "<template>", line, col, inline=True)

    def _render(self, template: jinja2.Template, context: Mapping[str, Any], shown: str, filename: str,
                line: int, col: int = 1, *, inline: bool = False) -> str:
        try:
            return template.render(**context)
        except jinja2.UndefinedError as exc:
            at = line if inline else _template_line(exc, filename)
            raise TemplateError(Diagnostic("error", "template", f"{exc.message}; define it in `vars:`, the "
                                           "inventory's vars, or pass it to the template", shown,
                                           at, col)) from None
        except jinja2.TemplateError as exc:
            at = line if inline else _template_line(exc, filename)
            raise TemplateError(Diagnostic("error", "template", f"template: {exc}", shown, at, col)) from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            at = line if inline else _template_line(exc, filename)
            raise TemplateError(Diagnostic("error", "template", f"template: {type(exc).__name__}: {exc}",
                                           shown, at, col)) from None


def _template_line(exc: BaseException, filename: str) -> int:
    """The template line an exception came from: Jinja2 rewrites its traceback so that template
    frames carry the template's file name and line numbers; the innermost such frame wins."""
    line = 1
    tb = exc.__traceback__
    while tb is not None:
        if filename and tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
