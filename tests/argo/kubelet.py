"""The kubelet's ``$(VAR)`` expansion of container ``env`` values, ``command`` and ``args``: a port
of Kubernetes' ``third_party/forked/golang/expansion`` (``$$`` → ``$``; ``$(NAME)`` → the value of an
earlier variable, or left as written when there is none), so tests see what a pod would run."""

from __future__ import annotations

from collections.abc import Mapping


def _read(text: str) -> tuple[str, bool, int]:
    """(what was read, whether it is a variable name, characters consumed after the ``$``)."""
    if text[0] == "$":
        return "$", False, 1
    if text[0] == "(":
        close = text.find(")", 1)
        if close != -1:
            return text[1:close], True, close + 1
        return "$(", False, 1
    return "$" + text[0], False, 1


def expand(text: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    checkpoint, cursor = 0, 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_var, advance = _read(text[cursor + 1:])
            out.append(env.get(read, f"$({read})") if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


def container_env(container: Mapping[str, object]) -> dict[str, str]:
    """The container's literal ``env`` entries in order, each expanded against the ones before it."""
    env: dict[str, str] = {}
    for entry in container.get("env") or []:  # type: ignore[attr-defined]
        if "value" in entry:
            env[entry["name"]] = expand(entry["value"], env)
    return env
