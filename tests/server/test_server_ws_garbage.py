"""A seed 003 client sending a binary frame or absurdly nested JSON gets an error frame and keeps its
connection (both raised inside the receive loop: the connection dropped with 1006)."""

from __future__ import annotations

import json

from tests.server.conftest import Servers, pipeline
from tests.server.test_server_seed003 import _until_end, _ws
from websockets.sync.client import connect


def test_garbage_frames_are_error_frames_and_the_connection_lives_on(servers: Servers) -> None:
    server = servers()
    with connect(_ws(server.url), open_timeout=10) as conn:
        conn.send(b"\x00\xff not text")
        kind, message = _until_end(conn)[-1]
        assert kind == "error" and "binary frames" in message
        conn.send("[" * 100_000 + "]" * 100_000)
        kind, message = _until_end(conn)[-1]
        assert kind == "error" and "nests too deeply" in message
        conn.send(json.dumps({"type": "run", "payload": pipeline(("hi", "echo hi"))}))
        assert _until_end(conn) == [("stdout", "hi\n"), ("done", "")]
    assert "Traceback" not in server.log()
