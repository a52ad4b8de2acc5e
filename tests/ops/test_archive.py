"""archive.download against a loopback HTTP server: changed then no change, --check untouched,
checksum mismatch leaves nothing, tar.gz and zip extraction, rollback byte for byte, members
that would escape ``dest`` refused."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_helpers import run_playbook, tree


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, folder it serves)."""
    folder = tmp_path / "www"
    folder.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def book(tmp_path: Path, tasks: str, name: str = "play.yaml") -> Path:
    path = tmp_path / name
    path.write_text("hosts: local\ntasks:\n" + tasks)
    return path


def targz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o640
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


BOOM = "  - {name: boom, op: command, with: {run: 'false'}}\n"


async def test_download_changes_then_no_change_and_rollback(tmp_path: Path, served: tuple[str, Path]) -> None:
    url, www = served
    payload = b"binary\x00payload\n" * 100
    (www / "tool.bin").write_bytes(payload)
    root = tmp_path / "root"
    root.mkdir()
    (root / "tool").write_bytes(b"previous")
    (root / "tool").chmod(0o600)
    tasks = (f"  - {{name: get, op: archive.download, with: {{src: {url}/tool.bin, checksum: '{sha(payload)}', "
             f"dest: {root}/tool, mode: '0755'}}}}\n")
    path = book(tmp_path, tasks)
    before = tree(root)
    plan, _ = await run_playbook(path, check=True)
    assert plan.steps()[0].planned is not None
    assert plan.steps()[0].planned.render() == (f"change: download {url}/tool.bin (sha256 "
                                                f"{sha(payload)[7:19]}) over {root}/tool")
    assert tree(root) == before
    _, outcome = await run_playbook(path)
    assert outcome is not None and outcome.changed == 1
    assert (root / "tool").read_bytes() == payload and (root / "tool").stat().st_mode & 0o777 == 0o755
    plan, outcome = await run_playbook(path)
    assert outcome is not None and outcome.ok == 1
    assert plan.steps()[0].applied is not None and plan.steps()[0].applied.kind == "none"
    (root / "tool").write_bytes(b"previous")
    (root / "tool").chmod(0o600)
    _, outcome = await run_playbook(book(tmp_path, tasks + BOOM, "fail.yaml"), on_failure="rollback")
    assert outcome is not None and outcome.rolled_back == 1 and tree(root) == before


async def test_checksum_mismatch_leaves_nothing(tmp_path: Path, served: tuple[str, Path]) -> None:
    url, www = served
    (www / "a.tgz").write_bytes(targz({"x": b"x"}))
    root = tmp_path / "root"
    root.mkdir()
    wrong = "sha256:" + "0" * 64
    for extra in ("", ", extract: true"):
        dest = f"{root}/out" + ("" if not extra else "dir")
        path = book(tmp_path, f"  - {{name: get, op: archive.download, with: {{src: {url}/a.tgz, checksum: '{wrong}', "
                              f"dest: {dest}{extra}}}}}\n")
        plan, outcome = await run_playbook(path)
        assert outcome is not None and outcome.failed == 1
        assert (plan.steps()[0].error or "").startswith(f"checksum mismatch for {url}/a.tgz: expected {wrong}, got ")
        assert list(root.iterdir()) == []
    missing = book(tmp_path, f"  - {{name: get, op: archive.download, with: {{src: {url}/nope, checksum: '{wrong}', "
                             f"dest: {root}/n}}}}\n")
    plan, outcome = await run_playbook(missing)
    assert outcome is not None and plan.steps()[0].error == f"GET {url}/nope: HTTP 404"


async def test_extract_tar_and_zip_then_no_change_and_rollback(tmp_path: Path, served: tuple[str, Path]) -> None:
    url, www = served
    tgz = targz({"app/bin/run": b"#!/bin/sh\necho hi\n", "app/README": b"readme\n"}, {"app/current": "bin/run"})
    (www / "app.tar.gz").write_bytes(tgz)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("docs/index.html", "<p>hi</p>")
    (www / "docs.zip").write_bytes(zbuf.getvalue())
    (tmp_path / "local.zip").write_bytes(zbuf.getvalue())
    root = tmp_path / "root"
    (root / "opt" / "app").mkdir(parents=True)
    (root / "opt" / "app" / "README").write_bytes(b"old readme, kept by rollback\n")
    tasks = (f"  - {{name: app, op: archive.download, with: {{src: {url}/app.tar.gz, checksum: '{sha(tgz)}', "
             f"dest: {root}/opt, extract: true}}}}\n"
             f"  - {{name: docs, op: archive.download, with: {{src: {url}/docs.zip, checksum: "
             f"'{sha(zbuf.getvalue())}', dest: {root}/srv/www, extract: true}}}}\n"
             f"  - {{name: local, op: archive.download, with: {{src: local.zip, checksum: "
             f"'{sha(zbuf.getvalue())}', dest: {root}/srv/copy, extract: true}}}}\n")
    path = book(tmp_path, tasks)
    before = tree(root)
    _, outcome = await run_playbook(path, check=True)
    assert tree(root) == before
    plan, outcome = await run_playbook(path)
    assert outcome is not None and outcome.changed == 3, [s.error for s in plan.steps()]
    assert (root / "opt" / "app" / "bin" / "run").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (root / "opt" / "app" / "bin" / "run").stat().st_mode & 0o777 == 0o640
    assert (root / "opt" / "app" / "current").readlink() == Path("bin/run")
    assert (root / "srv" / "www" / "docs" / "index.html").read_text() == "<p>hi</p>"
    assert (root / "srv" / "copy" / "docs" / "index.html").read_text() == "<p>hi</p>"
    plan, outcome = await run_playbook(path)
    assert outcome is not None and outcome.ok == 3
    assert plan.steps()[0].applied is not None and plan.steps()[0].applied.render().startswith(
        f"no change: {root}/opt holds the extracted app.tar.gz (sha256 ")
    # rollback: back to the tree before the first apply, byte for byte
    import shutil

    shutil.rmtree(root)
    (root / "opt" / "app").mkdir(parents=True)
    (root / "opt" / "app" / "README").write_bytes(b"old readme, kept by rollback\n")
    _, outcome = await run_playbook(book(tmp_path, tasks + BOOM, "fail.yaml"), on_failure="rollback")
    assert outcome is not None and outcome.rolled_back == 3
    assert tree(root) == before


async def test_members_escaping_dest_are_refused(tmp_path: Path, served: tuple[str, Path]) -> None:
    url, www = served
    for name, data in (("dots.tgz", targz({"ok": b"1", "../escape": b"x"})),
                       ("link.tgz", targz({"ok": b"1"}, {"out": "../../etc/passwd"}))):
        (www / name).write_bytes(data)
        root = tmp_path / name
        root.mkdir()
        path = book(tmp_path, f"  - {{name: x, op: archive.download, with: {{src: {url}/{name}, "
                              f"checksum: '{sha(data)}', dest: {root}/d, extract: true}}}}\n")
        plan, outcome = await run_playbook(path)
        assert outcome is not None and outcome.failed == 1
        assert "would land outside" in (plan.steps()[0].error or "")
        assert list(root.iterdir()) == [] and not (tmp_path / "escape").exists()  # the partial tree is undone


def ordered_tgz(members: list[tuple[str, str | bytes]]) -> bytes:
    """A tar.gz of members in this order: bytes are files, str are symbolic link targets."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, body in members:
            info = tarfile.TarInfo(name)
            if isinstance(body, str):
                info.type, info.linkname = tarfile.SYMTYPE, body
                tf.addfile(info)
            else:
                info.size, info.mode = len(body), 0o640
                tf.addfile(info, io.BytesIO(body))
    return buf.getvalue()


async def test_members_through_links_of_the_archive_are_refused(tmp_path: Path, served: tuple[str, Path]) -> None:
    """``a -> .`` then ``a/b -> ..`` reads as inside ``dest`` but makes ``dest/b`` point at its parent;
    a later ``b/pwned`` would land outside. Any member under a link the archive made is refused."""
    url, www = served
    for name, members in (
            ("chain.tgz", [("a", "."), ("a/b", ".."), ("b/pwned", b"x")]),
            ("through.tgz", [("sub", "."), ("sub/f", b"x")])):
        data = ordered_tgz(members)
        (www / name).write_bytes(data)
        root = tmp_path / name
        root.mkdir()
        path = book(tmp_path, f"  - {{name: x, op: archive.download, with: {{src: {url}/{name}, "
                              f"checksum: '{sha(data)}', dest: {root}/d, extract: true}}}}\n")
        plan, outcome = await run_playbook(path)
        assert outcome is not None and outcome.failed == 1, name
        assert "symbolic link" in (plan.steps()[0].error or ""), plan.steps()[0].error
        assert list(root.iterdir()) == [], name  # nothing escaped, the partial tree is undone


async def test_archive_unpacking_past_the_budget_is_refused(tmp_path: Path, served: tuple[str, Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A small archive that unpacks to more than MAX_EXTRACTED (a compression bomb) is refused before its
    members are read into memory, and what was written is undone."""
    from worldtree.ops import archive

    monkeypatch.setattr(archive, "MAX_EXTRACTED", 1500)
    url, www = served
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a", b"\0" * 1000)
        zf.writestr("b", b"\0" * 1000)
    for name, data in (("bomb.tgz", ordered_tgz([("a", b"\0" * 1000), ("b", b"\0" * 1000)])),
                       ("bomb.zip", zipped.getvalue())):
        (www / name).write_bytes(data)
        root = tmp_path / name
        root.mkdir()
        path = book(tmp_path, f"  - {{name: x, op: archive.download, with: {{src: {url}/{name}, "
                              f"checksum: '{sha(data)}', dest: {root}/d, extract: true}}}}\n")
        plan, outcome = await run_playbook(path)
        assert outcome is not None and outcome.failed == 1, name
        assert "unpacks to more than" in (plan.steps()[0].error or ""), plan.steps()[0].error
        assert list(root.iterdir()) == [], name


async def test_a_url_httpx_cannot_parse_is_an_op_error(tmp_path: Path) -> None:
    """httpx.InvalidURL is no httpx.HTTPError: it escaped as an unexpected exception (a traceback)."""
    path = book(tmp_path, f"  - {{name: x, op: archive.download, with: {{src: 'http://[::1/x.tgz', "
                          f"checksum: '{sha(b'')}', dest: {tmp_path}/out}}}}\n")
    plan, outcome = await run_playbook(path)
    assert outcome is not None and outcome.failed == 1
    assert "GET http://[::1/x.tgz: InvalidURL" in (plan.steps()[0].error or ""), plan.steps()[0].error
    assert not (tmp_path / "out").exists()


async def test_setuid_bits_are_not_extracted(tmp_path: Path, served: tuple[str, Path]) -> None:
    """A member with mode 4755 (tar) or 6755 (zip) was written with it: extracted as root, a setuid-root
    program. Permission bits are kept, setuid/setgid/sticky dropped."""
    url, www = served
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("bin/tool")
        info.size, info.mode = 2, 0o4755
        tf.addfile(info, io.BytesIO(b"#!"))
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        member = zipfile.ZipInfo("bin/tool")
        member.external_attr = 0o106755 << 16
        zf.writestr(member, b"#!")
    for name, data in (("suid.tgz", buf.getvalue()), ("suid.zip", zipped.getvalue())):
        (www / name).write_bytes(data)
        root = tmp_path / name
        path = book(tmp_path, f"  - {{name: x, op: archive.download, with: {{src: {url}/{name}, "
                              f"checksum: '{sha(data)}', dest: {root}, extract: true}}}}\n")
        _, outcome = await run_playbook(path)
        assert outcome is not None and outcome.changed == 1, name
        assert (root / "bin" / "tool").stat().st_mode & 0o7777 == 0o755, name


async def test_a_dripping_server_is_cut_off_at_the_timeout(tmp_path: Path) -> None:
    """httpx's timeout applies to each read: a server sending a byte every 0.2 s kept the download
    going for as long as it dripped. `timeout` now bounds the whole download."""
    import time

    stop = threading.Event()

    class Drip(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(100):  # 20 s at most
                if stop.is_set():
                    return
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.bin"
        path = book(tmp_path, f"  - {{name: x, op: archive.download, with: {{src: {url}, checksum: '{sha(b'')}', "
                              f"dest: {tmp_path}/out, timeout: 1}}}}\n")
        started = time.monotonic()
        plan, outcome = await run_playbook(path)
        assert outcome is not None and outcome.failed == 1
        assert "not downloaded within 1 s" in (plan.steps()[0].error or ""), plan.steps()[0].error
        assert time.monotonic() - started < 10
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
