"""One task per operation, each with the state it starts from, shared by the local and SSH tests.

Paths are under ``{{ root }}`` (a playbook or inventory variable), so the same tasks run on
this machine and on every farm host.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

TEMPLATE = "# {{ name }}\nport={{ port }}\nos={{ facts.os }}\n"
BLOB = bytes(range(256)) * 4

Setup = Callable[[Path], None]


def _none(root: Path) -> None:
    return None


def _old_lines(root: Path) -> None:
    (root / "features").write_text("a=1\ncache=off\nz=9\n")
    (root / "features").chmod(0o640)


def _victim(root: Path) -> None:
    (root / "victim").write_bytes(b"old bytes\x00\xff")
    (root / "victim").chmod(0o604)


def _old_link(root: Path) -> None:
    (root / "current").symlink_to("/nonexistent/previous")


def _old_config(root: Path) -> None:
    (root / "app.conf").write_text("port=1\n")
    (root / "app.conf").chmod(0o600)


#: name -> (task YAML lines, setup of the root before the first apply)
CASES: dict[str, tuple[str, Setup]] = {
    "directory": ('op: file.directory\n    with: {path: "{{ root }}/d/e", mode: "0750"}', _none),
    "file-content": ('op: file.file\n    with: {path: "{{ root }}/f.txt", content: "hi\\n", mode: "0600"}', _none),
    "file-src": ('op: file.file\n    with: {path: "{{ root }}/blob.bin", src: files/blob.bin}', _none),
    "template": ('op: file.template\n    with: {src: templates/app.conf.j2, dest: "{{ root }}/app.conf"}',
                 _old_config),
    "line": ('op: file.line\n    with: {path: "{{ root }}/features", line: "cache=on", match: "^cache="}',
             _old_lines),
    "absent": ('op: file.absent\n    with: {path: "{{ root }}/victim"}', _victim),
    "link": ('op: file.link\n    with: {path: "{{ root }}/current", target: "{{ root }}/d"}', _old_link),
    "command": ('op: command\n    with: {run: "echo ran > {{ root }}/ran", creates: "{{ root }}/ran"}\n'
                '    rollback: "rm {{ root }}/ran"', _none),
}


def write_playbook(folder: Path, names: list[str], *, root: Path | None = None, hosts: str = "local",
                   extra_tasks: str = "") -> Path:
    """A playbook of the named cases (``root`` as a playbook variable when given)."""
    (folder / "templates").mkdir(exist_ok=True)
    (folder / "templates" / "app.conf.j2").write_text(TEMPLATE)
    (folder / "files").mkdir(exist_ok=True)
    (folder / "files" / "blob.bin").write_bytes(BLOB)
    vars_ = f"{{name: demo, port: 8080{', root: ' + str(root) if root else ''}}}"
    tasks = "".join(f"  - name: {n}\n    {CASES[n][0]}\n" for n in names)
    path = folder / "playbook.yaml"
    path.write_text(f"name: t\nhosts: {hosts}\nvars: {vars_}\ntasks:\n{tasks}{extra_tasks}")
    return path


def setup_all(root: Path, names: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        CASES[name][1](root)
