"""The idp backend's refusals that need no server: credentials over plain HTTP to a remote host, a
server that is not there. Both must name the server and never the token."""

from __future__ import annotations

import asyncio
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from worldtree.backends.base import RunContext, StepRequest
from worldtree.backends.idp import IdpBackend
from worldtree.compile.compiler import compile_pipeline
from worldtree.compile.loader import load_pipeline_text
from worldtree.errors import BackendError

TOKEN = "wt_secret-token-value-42"


def _attempt(engine: str, env: dict[str, str]) -> str:
    graph = compile_pipeline(load_pipeline_text(
        "jobs:\n  a:\n    secrets: [TOKEN]\n    steps:\n"
        f"      - {{engine: '{engine}', command: 'echo hi'}}\n", "p.yaml").spec)
    node = graph.nodes[0]
    ctx = RunContext(run_id="r", attempt=1, workdir="/tmp", graph=graph, secret_values=[TOKEN])
    backend = IdpBackend(ctx)
    lines: list[str] = []

    async def go() -> None:
        try:
            await backend.execute(StepRequest(node=node, command=node.command, env=env, workdir="/tmp"),
                                  lambda _s, line: lines.append(line))
        finally:
            await backend.close()

    with pytest.raises(BackendError) as info:
        asyncio.run(go())
    assert not lines
    return str(info.value)


def test_token_over_plain_http_to_a_remote_host_is_refused_before_sending() -> None:
    # 192.0.2.1 (TEST-NET-1) would hang on connect: the refusal comes before any connection
    message = _attempt("idp://ci:${TOKEN}@192.0.2.1:8080", {"TOKEN": TOKEN})
    assert "idp server 192.0.2.1:8080" in message and "idps://" in message and TOKEN not in message


def test_no_server_listening_names_the_server() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        message = _attempt(f"idp://ci:${{TOKEN}}@127.0.0.1:{port}", {"TOKEN": TOKEN})
    assert f"idp server 127.0.0.1:{port}: cannot connect" in message and TOKEN not in message


def test_a_token_it_cannot_expand_is_a_clear_error() -> None:
    message = _attempt("idp://ci:${TOKEN}@127.0.0.1:8080", {})
    assert "${TOKEN}" in message and "not set" in message


class _NotWorldtree(BaseHTTPRequestHandler):
    """Some other web server on the port: 200 with HTML to everything."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b"<html>hello</html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_a_port_that_is_not_a_worldtree_server_is_a_clear_error() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NotWorldtree)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        message = _attempt(f"idp://ci:${{TOKEN}}@127.0.0.1:{port}", {"TOKEN": TOKEN})
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert message == (f"idp server 127.0.0.1:{port}: POST /api/v1/jobs did not answer JSON (is that a "
                       "worldtree server's HTTP port?)")


def test_secrets_go_by_name_never_as_values() -> None:
    """The step's own secrets would be stored by the remote run: only their names are sent."""
    graph = compile_pipeline(load_pipeline_text(
        "jobs:\n  a:\n    secrets: [TOKEN, DB_PASSWORD]\n    steps:\n"
        "      - {engine: 'idp://ci:${TOKEN}@127.0.0.1:9', command: 'echo hi', env: {PLAIN: x}}\n",
        "p.yaml").spec)
    node = graph.nodes[0]
    ctx = RunContext(run_id="r", attempt=1, workdir="/tmp", graph=graph, secret_values=[TOKEN, "db-pw-77"])
    backend = IdpBackend(ctx)
    sent: list[dict[str, object]] = []

    async def fake_call(client: object, server: str, method: str, path: str, **kwargs: object) -> dict[str, object]:
        sent.append(dict(kwargs.get("json") or {}))  # type: ignore[call-overload]
        raise BackendError("stop here")

    backend._call = fake_call  # type: ignore[method-assign]
    env = {"TOKEN": TOKEN, "DB_PASSWORD": "db-pw-77", "ALIAS": "db-pw-77", "PLAIN": "x"}

    async def go() -> None:
        try:
            await backend.execute(StepRequest(node=node, command=node.command, env=env, workdir="/tmp"),
                                  lambda _s, _line: None)
        finally:
            await backend.close()

    with pytest.raises(BackendError):
        asyncio.run(go())
    assert sent and sent[0]["env"] == {"PLAIN": "x"}
    assert sent[0]["secrets"] == ["DB_PASSWORD"]
    assert TOKEN not in repr(sent) and "db-pw-77" not in repr(sent)
