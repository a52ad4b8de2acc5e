"""One way to build a step's command, for every backend (Woodpecker has one script generator
for all its backends; pyinfra's commands are objects that quote and mask themselves).

A step is ``(shell, command)``. Everywhere — a host subprocess, a container's entrypoint, a
remote ``exec`` — it runs as ``argv()``:

* a POSIX shell named alone (``sh``, ``bash``) gets ``-e``: ``sh -e -c CMD`` stops at the first
  failing line, as CI users expect (``false; echo after`` exits 1 on every backend);
* a shell given with options (``bash -eo pipefail``) is used as written;
* any other interpreter (``python3``, ``node``) gets ``-c CMD`` only: ``-e`` means something
  else to them, or nothing.

:meth:`StepCommand.direct_argv` is GNU make's fast path for the host: a one-line command of
plain words means the same without a shell. :meth:`StepCommand.shell_line` is the same argv
as one line of POSIX shell (remote hosts), :meth:`StepCommand.display` what a user may see.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from typing import Protocol

from worldtree.model.shell import POSIX_SHELLS, is_plain_posix, split_shell

__all__ = ["Masking", "StepCommand"]

#: Words no POSIX shell would change: no quotes, globs, variables, redirections or separators.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
#: Builtins and keywords that must run inside a shell to mean what they say (echo, printf, test
#: and pwd exist as programs too, but behave differently from the shells' builtins).
_SHELL_ONLY = frozenset({
    '!', '.', ':', '[', '[[', '{', '}', 'alias', 'echo', 'printf', 'test', 'pwd', 'kill', 'bg', 'break',
    'builtin', 'case', 'cd', 'command', 'continue', 'declare', 'do', 'done', 'elif', 'else', 'enable', 'esac',
    'eval', 'exec', 'exit', 'export', 'fc', 'fg', 'fi', 'for', 'function', 'getopts', 'hash', 'history', 'if',
    'jobs', 'let', 'local', 'newgrp', 'readonly', 'read', 'return', 'select', 'set', 'shift', 'shopt',
    'source', 'then', 'time', 'times', 'trap', 'type', 'typeset', 'ulimit', 'umask', 'unalias', 'unset',
    'until', 'wait', 'while',
})


class Masking(Protocol):
    """What :meth:`StepCommand.display` needs of ``engine.masking.Masker``."""

    def mask(self, text: str) -> str: ...


@dataclass(frozen=True)
class StepCommand:
    """A step's command under its shell; see the module docstring for the rules."""

    shell: str
    command: str

    @functools.cached_property
    def shell_words(self) -> list[str]:
        """The shell as words (the loader has already rejected unbalanced quotes)."""
        return split_shell(self.shell)

    def argv(self) -> list[str]:
        """``[*shell, -e?, -c, command]``: what every backend runs."""
        words = self.shell_words
        return [*words, "-e", "-c", self.command] if is_plain_posix(words) else [*words, "-c", self.command]

    def shell_line(self) -> str:
        """:meth:`argv` quoted as one line of POSIX shell, for a remote host's login shell."""
        return " ".join(shlex.quote(word) for word in self.argv())

    def direct_argv(self, path: str | None) -> list[str] | None:
        """The argv without a shell when that changes nothing, else None.

        ``true``, ``make -j4 build`` or ``./deploy.sh prod`` mean the same with or without
        ``sh -c``, and skipping the shell saves a process start per step. The program is
        resolved on the step's PATH; None when a shell is needed (or the program is not
        found: the shell then reports it as it always does).
        """
        command = self.command
        if "\n" in command or " " in self.shell or os.path.basename(self.shell) not in POSIX_SHELLS:
            return None
        words = command.split()
        if not words or words[0] in _SHELL_ONLY or "=" in words[0]:
            return None
        if not all(_PLAIN_WORD.fullmatch(word) for word in words):
            return None
        program = _which(words[0], path)
        return None if program is None else [program, *words[1:]]

    def display(self, masker: Masking) -> str:
        """The argv as a user may see it: secrets masked in each word before quoting, so a
        secret with special characters is masked in its raw form."""
        return " ".join(shlex.quote(masker.mask(word)) for word in self.argv())


@functools.lru_cache(maxsize=512)
def _which(name: str, path: str | None) -> str | None:
    if "/" in name:
        return None  # relative to the step's workdir: leave it to the shell
    return shutil.which(name, path=path)
