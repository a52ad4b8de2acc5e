"""Shell commands as objects that quote and mask themselves (pyinfra's ``StringCommand``).

An operation builds a command from literal shell text and values: values are quoted with
:func:`shlex.quote` when the line is rendered, and values marked secret are shown as ``***``
by :meth:`ShellCommand.display`, so a plan, a log line or an error never carries them while
the host still receives the real text.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

__all__ = ["Quoted", "Secret", "ShellCommand", "sh"]


@dataclass(frozen=True, slots=True)
class Quoted:
    """A value that becomes one shell word, whatever it contains."""

    value: str


@dataclass(frozen=True, slots=True)
class Secret:
    """A value that becomes one shell word and is never displayed."""

    value: str


Part = str | Quoted | Secret


@dataclass(frozen=True, slots=True)
class ShellCommand:
    """Literal shell text (``str`` parts, used as written) and values (quoted), joined by spaces."""

    parts: tuple[Part, ...]
    secrets: tuple[str, ...] = field(default=())

    def render(self) -> str:
        """The line the host runs (secrets included)."""
        return " ".join(p if isinstance(p, str) else shlex.quote(p.value) for p in self.parts)

    def display(self) -> str:
        """The line a user may see: secret values masked, also inside literal text."""
        shown = " ".join("***" if isinstance(p, Secret) else p if isinstance(p, str) else shlex.quote(p.value)
                         for p in self.parts)
        for secret in self.secrets:
            if len(secret) >= 3:
                shown = shown.replace(secret, "***")
        return shown

    def __str__(self) -> str:  # never the secret form by accident
        return self.display()


def sh(*parts: Part, secrets: tuple[str, ...] = ()) -> ShellCommand:
    """``sh("test -e", Quoted(path))`` -> a :class:`ShellCommand`."""
    return ShellCommand(tuple(parts), secrets)
