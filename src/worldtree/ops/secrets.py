"""``${NAME}`` in a playbook's ``with:`` and ``rollback:``: values from ``--secrets-file`` or the environment.

``${NAME}`` is replaced before templates render; an unset name is a located error (writing a
file or running a command with an empty credential would be worse than stopping). ``$${NAME}``
writes a literal ``${NAME}`` (for a shell); ``$NAME`` without braces is never touched. Every
value substituted is collected so the plan, diffs, results and errors show it as ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from worldtree.model.refs import NAME

__all__ = ["Secrets", "mask"]

_PATTERN = re.compile(r"\$\$\{" + NAME + r"\}|\$\{(" + NAME + r")\}")


class Secrets:
    """The environment ``${NAME}`` reads from, and the values used so far."""

    def __init__(self, env: Mapping[str, str] | None) -> None:
        self.env = dict(env or {})
        self.used: dict[str, str] = {}

    def expand(self, value: Any) -> tuple[Any, str | None]:
        """``value`` with references replaced (strings inside dicts and lists too), or the first
        unset name as the second item."""
        if isinstance(value, str):
            if "${" not in value:
                return value, None
            missing: list[str] = []

            def sub(match: re.Match[str]) -> str:
                name = match.group(1)
                if name is None:
                    return match.group(0)[1:]
                if name not in self.env:
                    missing.append(name)
                    return ""
                self.used[name] = self.env[name]
                return self.env[name]

            out = _PATTERN.sub(sub, value)
            return (value, missing[0]) if missing else (out, None)
        if isinstance(value, dict):
            result: dict[Any, Any] = {}
            for key, item in value.items():
                result[key], missing_name = self.expand(item)
                if missing_name:
                    return value, missing_name
            return result, None
        if isinstance(value, list):
            items = []
            for item in value:
                expanded, missing_name = self.expand(item)
                if missing_name:
                    return value, missing_name
                items.append(expanded)
            return items, None
        return value, None

    def values(self) -> list[str]:
        return [v for v in self.used.values() if len(v) >= 3]


def mask(text: str, values: list[str]) -> str:
    """``text`` with every value of ``values`` (longest first) shown as ``***``."""
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "***")
    return text
