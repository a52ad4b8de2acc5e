"""What runs on the remote host: pure text, tested without a server.

A step opens one exec channel running :data:`CHANNEL_COMMAND` in the account's login shell
(sshd's ``$SHELL -c``; POSIX shells: sh, dash, bash, zsh, ksh). It prints its PID and
sources the step script from stdin. Sending the script on stdin keeps the environment
(secrets included) out of the remote process list. sshd makes that shell the leader of a new
session and process group, and ``exec`` keeps the PID, so the PID is the group of everything
the step starts; :func:`kill_command` signals that group over a second channel.

The script exports the environment, enters the workdir and ``exec``s the node's shell::

    export NAME='value'                    # req.env, each value quoted
    cd -- /srv/app                         # see workdir_lines for the rules
    exec sh -e -c '<the step command>'     # backends.command.StepCommand, as on every backend
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from worldtree.backends.command import StepCommand
from worldtree.model.refs import NAME

__all__ = ["CHANNEL_COMMAND", "PID_MARK", "build_script", "kill_command", "parse_pid", "workdir_lines"]

PID_MARK = "WORLDTREE-PID:"
#: ``. /dev/stdin`` sources the script without a fork (``eval "$(cat)"`` costs a process per step)
CHANNEL_COMMAND = f"printf '{PID_MARK}%s\\n' \"$$\"; . /dev/stdin"
_IDENT = re.compile(f"^{NAME}$")


def workdir_lines(node_workdir: str | None, run_workdir: str | None) -> list[str]:
    """Where a remote step runs.

    * the node's own ``workdir`` (absolute, or relative to the remote home), created if missing;
    * else the run's workdir path if that directory exists on the remote host (a shared
      filesystem, or a loopback host);
    * else the remote user's home directory.
    """
    if node_workdir:
        path = shlex.quote(node_workdir)
        return [f"mkdir -p -- {path} 2>/dev/null; cd -- {path} || "
                f"{{ echo \"worldtree: cannot enter workdir \"{path} >&2; exit 1; }}"]
    if run_workdir:
        return [f"cd -- {shlex.quote(run_workdir)} 2>/dev/null || cd"]
    return ["cd"]


def build_script(command: str, env: Mapping[str, str], *, shell: str = "sh",
                 node_workdir: str | None = None, run_workdir: str | None = None) -> str:
    """The text evaluated by :data:`CHANNEL_COMMAND`: exports, workdir, then ``exec`` of the
    step's :class:`~worldtree.backends.command.StepCommand` (``sh -e -c``, as on every backend).
    Names that are not shell identifiers cannot be exported by a POSIX shell and are left out."""
    lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items() if _IDENT.match(k)]
    lines.extend(workdir_lines(node_workdir, run_workdir))
    lines.append("exec " + StepCommand(shell, command).shell_line())
    return "\n".join(lines) + "\n"


def parse_pid(line: str) -> int | None:
    """The PID in the marker line, or None for any other line."""
    if line.startswith(PID_MARK):
        text = line[len(PID_MARK):].strip()
        if text.isdigit():
            return int(text)
    return None


def kill_command(pgid: int, grace_seconds: float) -> str:
    """SIGTERM the process group, wait up to ``grace_seconds``, then SIGKILL what is left.

    No ``--`` before the negative PID: dash's ``kill`` rejects it."""
    ticks = max(1, int(grace_seconds * 10))
    return (f"p={pgid}; kill -TERM -$p 2>/dev/null || kill -TERM $p 2>/dev/null || exit 0; i=0; "
            f"while kill -0 -$p 2>/dev/null; do "
            f"if [ $i -ge {ticks} ]; then kill -KILL -$p 2>/dev/null; break; fi; "
            f"sleep 0.1; i=$((i+1)); done; exit 0")
