"""``${NAME}`` references in strings: the one expander every layer uses.

Engine URLs, registry credentials, inventory passwords, plugin settings and compose files all
name variables of the step environment (where secrets arrive) as ``${NAME}``. Two policies:

* :func:`expand` — an unset name becomes ``""``, as a shell does (plugin settings, compose);
* :func:`expand_required` — an unset name is an error that names the variable, never a value
  (credentials and addresses: connecting to ``ssh://@host`` because a secret was missing
  would be worse than stopping).

Compose's extra forms (``$$``, ``$VAR``, ``${VAR:-default}``) build on :data:`NAME`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from worldtree.errors import BackendError

__all__ = ["NAME", "REF", "expand", "expand_required", "names"]

#: a variable name: what a POSIX shell can export
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
REF = re.compile(r"\$\{(" + NAME + r")\}")


def names(text: str) -> list[str]:
    """The names ``text`` refers to, in order (repeats kept)."""
    return REF.findall(text)


def expand(text: str, env: Mapping[str, str]) -> str:
    """``${NAME}`` -> its value in ``env``; empty when unset."""
    if "${" not in text:
        return text
    return REF.sub(lambda m: env.get(m.group(1), ""), text)


def expand_required(text: str, env: Mapping[str, str], what: str) -> str:
    """``${NAME}`` -> its value; BackendError naming ``what`` and the variable when unset."""
    if "${" not in text:
        return text
    missing = [n for n in names(text) if n not in env]
    if missing:
        raise BackendError(f"{what} uses ${{{missing[0]}}}, which is not set: list the secret in the job's "
                           "`secrets:` or set it in `environment`")
    return REF.sub(lambda m: env[m.group(1)], text)
