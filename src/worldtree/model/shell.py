"""What a ``shell:`` value means: the words of the interpreter a step's command runs under.

``sh`` (the default), ``bash``, ``bash -eo pipefail``, ``python3``... The value is split as a
shell would split it; unbalanced quotes are a load error (:func:`check_shell`), not a crash
when the step starts. How the command is then run is :mod:`worldtree.backends.command`.
"""

from __future__ import annotations

import os
import shlex

__all__ = ["POSIX_SHELLS", "check_shell", "is_plain_posix", "split_shell"]

#: shells that understand ``-e`` (stop at the first failing command) and ``-c``
POSIX_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"})


def split_shell(text: str | None) -> list[str]:
    """``"bash -eo pipefail"`` -> ``["bash", "-eo", "pipefail"]``; empty -> ``["sh"]``.
    ValueError for unbalanced quotes (the loader reports it first)."""
    return shlex.split(text or "") or ["sh"]


def is_plain_posix(words: list[str]) -> bool:
    """A POSIX shell named without options: worldtree adds ``-e``. A shell given with options
    is used as written, and other interpreters (``python3``) never get ``-e``."""
    return len(words) == 1 and os.path.basename(words[0]) in POSIX_SHELLS


def check_shell(text: str) -> str | None:
    """None when ``text`` can be used as a step's shell; else what is wrong and what to do."""
    try:
        words = split_shell(text)
    except ValueError as exc:
        return f"shell {text!r} cannot be split into words ({exc}); balance its quotes"
    if any("\0" in w for w in words):
        return "shell contains a NUL character; remove it"
    return None
