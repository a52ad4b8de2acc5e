"""RemoteRuns against a loopback HTTP server that is not (quite) a worldtree server: every odd answer
is a worldtree error a caller handles (no JSONDecodeError, TypeError or ValueError escapes), and a
password in the server URL never appears in a message."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from worldtree.app.remote import RemoteRuns
from worldtree.errors import ConnectError, SpecError, WorldtreeError

ANSWERS: dict[str, tuple[int, bytes]] = {
    "html": (200, b"<html>a proxy's page</html>"),
    "list": (200, b"[1, 2]"),
    "empty": (200, b""),
    "bad422": (422, json.dumps({"error": {"code": "x", "message": "m", "details": [
        {"line": "abc", "col": None, "message": "bad"}]}}).encode()),
    "down": (500, b"{}"),
}


@pytest.fixture
def odd_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            status, body = ANSWERS.get(self.path.split("/")[4].split("?")[0], (404, b"{}"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("run_id", "kind", "words"), [
    ("html", ConnectError, "is not a JSON object"),
    ("list", ConnectError, "is not a JSON object"),
    ("empty", ConnectError, "is not a JSON object"),
    ("bad422", SpecError, "bad"),
    ("down", ConnectError, "failed (500)"),
])
def test_odd_answers_are_worldtree_errors(odd_server: str, run_id: str, kind: type[Exception], words: str) -> None:
    runs = RemoteRuns(odd_server.replace("//", "//user:pw-s3cr3t@"))
    try:
        with pytest.raises(WorldtreeError) as info:
            runs.get_run(run_id)
    finally:
        runs.close()
    assert isinstance(info.value, kind) and words in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_an_unreachable_server_hides_the_password() -> None:
    runs = RemoteRuns("http://user:pw-s3cr3t@127.0.0.1:1")
    calls: list[Callable[[], Any]] = [lambda: runs.get_run("x"), lambda: runs.list_runs()]
    for call in calls:
        with pytest.raises(ConnectError, match=r"cannot reach http://user:\*\*\*@127\.0\.0\.1:1") as info:
            call()
        assert "s3cr3t" not in str(info.value)
    runs.close()
