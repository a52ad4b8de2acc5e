"""One list of steps every backend must run the same way (issue 7 §4): same exit code, same
output. tests/test_command.py pins the host's results; tests/docker and tests/ssh compare
theirs with :data:`EXPECTED`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    name: str
    command: str
    shell: str = "sh"
    env: dict[str, str] = field(default_factory=dict)
    #: needs an interpreter a minimal image may lack
    needs: str | None = None


CASES = [
    Case("stops-at-first-failure", "false; echo after"),
    Case("stops-on-a-later-line", "echo one\nexit 4\necho never"),
    Case("options-used-as-written", "false; echo after", shell="sh -c"),  # `sh -c -c CMD`: no -e
    Case("python-without-e", "import sys\nprint('py', sys.argv[0])\nsys.exit(3)", shell="python3",
         needs="python3"),
    Case("quoting", "printf '%s|' \"a b\" 'c\"d' '$HOME' \"$X\" \"it's\"; echo", env={"X": "x $y 'z'"}),
    Case("set-x", "set -x; echo hi"),
]

EXPECTED: dict[str, tuple[int, list[str], list[str]]] = {
    "stops-at-first-failure": (1, [], []),
    "stops-on-a-later-line": (4, ["one"], []),
    "options-used-as-written": (0, ["after"], []),
    "python-without-e": (3, ["py -c"], []),
    "quoting": (0, ["a b|c\"d|$HOME|x $y 'z'|it's|"], []),
    "set-x": (0, ["hi"], ["+ echo hi"]),
}
