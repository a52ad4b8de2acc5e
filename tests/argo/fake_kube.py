"""A loopback HTTP server speaking the part of the Kubernetes API ``worldtree argo`` uses.

No cluster can run here, so this stands in for the API server: create, get, list, watch and
(merge-)patch of ``workflows`` and ``cronworkflows`` in ``argoproj.io/v1alpha1``, with
resource versions, ``generateName``, bearer-token auth, 404/409 ``Status`` bodies and watch
streams (one JSON event per line, ended by ``timeoutSeconds``). Tests play the Argo controller
by calling :meth:`FakeKube.set_status`; every request is recorded.
"""

from __future__ import annotations

import functools
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

GROUP_PATH = "/apis/argoproj.io/v1alpha1/namespaces/"
KINDS = {"workflows": "Workflow", "cronworkflows": "CronWorkflow"}
TOKEN = "test-token-0123456789"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.events: list[tuple[int, tuple[str, str, str], str, dict[str, Any]]] = []
        self.requests: list[Request] = []
        self.version = 100
        self.cond = threading.Condition()
        self.closing = False
        #: the next this many watches get a 410 "too old resource version" ERROR event (etcd compaction)
        self.expire_watches = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and chunked watch streams as the API server sends

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_PATCH(self) -> None:
                fake._handle(self, "PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- life cycle --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeKube:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self, path: Path, namespace: str | None = None) -> Path:
        context: dict[str, Any] = {"cluster": "fake", "user": "tester"}
        if namespace:
            context["namespace"] = namespace
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": TOKEN}}],
            "contexts": [{"name": "fake", "context": context}]}))
        return path

    # -- the test's side (the "controller") ----------------------------------------------------
    def wait_for(self, plural: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first object of ``plural`` once it exists."""
        with self.cond:
            ok = self.cond.wait_for(lambda: any(k[0] == plural for k in self.objects), timeout)
            assert ok, f"no {plural} created within {timeout} s"
            return next(v for k, v in self.objects.items() if k[0] == plural)

    def wait_request(self, method: str, timeout: float = 30.0) -> Request:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(r.method == method for r in self.requests), timeout)
            assert ok, f"no {method} request within {timeout} s"
            return next(r for r in self.requests if r.method == method)

    def set_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        with self.cond:
            key = ("workflows", namespace, name)
            self._store(key, "MODIFIED", {**self.objects[key], "status": status})

    # -- the server's side -------------------------------------------------------------------
    def _store(self, key: tuple[str, str, str], kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.version)}}
        self.objects[key] = obj
        self.events.append((self.version, key, kind, obj))
        self.cond.notify_all()
        return obj

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        query = parse_qs(url.query)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self.cond:
            self.requests.append(Request(method, url.path, query, dict(h.headers.items()), body))
            self.cond.notify_all()
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._status(h, 401, "Unauthorized", "Unauthorized")
        if not url.path.startswith(GROUP_PATH):
            return self._status(h, 404, "NotFound", f"the server could not find {url.path}")
        parts = url.path[len(GROUP_PATH):].split("/")
        if len(parts) not in (2, 3) or parts[1] not in KINDS:
            return self._status(h, 404, "NotFound", f"the server could not find {url.path}")
        namespace, plural = parts[0], parts[1]
        name = parts[2] if len(parts) == 3 else None
        if method == "POST" and name is None:
            return self._create(h, namespace, plural, body)
        if method == "GET" and name is None and query.get("watch", ["false"])[0].lower() == "true":
            return self._watch(h, namespace, plural, query)
        if method == "GET" and name is None:
            with self.cond:
                items = [v for k, v in self.objects.items() if k[:2] == (plural, namespace)]
            return self._json(h, 200, {"apiVersion": "argoproj.io/v1alpha1", "kind": KINDS[plural] + "List",
                                       "metadata": {"resourceVersion": str(self.version)}, "items": items})
        with self.cond:
            obj = self.objects.get((plural, namespace, name or ""))
        if obj is None:
            return self._status(h, 404, "NotFound", f'{plural}.argoproj.io "{name}" not found')
        if method == "GET":
            return self._json(h, 200, obj)
        if method == "PATCH":
            if h.headers.get("Content-Type") != "application/merge-patch+json" or not isinstance(body, dict):
                return self._status(h, 415, "UnsupportedMediaType", "this fake takes JSON merge patches only")
            with self.cond:
                patched = self._store((plural, namespace, name or ""), "MODIFIED", _merge(obj, body))
            return self._json(h, 200, patched)
        return self._status(h, 405, "MethodNotAllowed", f"{method} is not supported here")

    def _create(self, h: BaseHTTPRequestHandler, namespace: str, plural: str, body: Any) -> None:
        if not isinstance(body, dict) or body.get("kind") != KINDS[plural] \
                or body.get("apiVersion") != "argoproj.io/v1alpha1":
            return self._status(h, 400, "BadRequest", f"expected a {KINDS[plural]} of argoproj.io/v1alpha1")
        meta = dict(body.get("metadata") or {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                return self._status(h, 422, "Invalid", "metadata.name or metadata.generateName is required")
            meta["name"] = meta.pop("generateName") + secrets.token_hex(3)[:5]
        if meta.get("namespace", namespace) != namespace:
            return self._status(h, 400, "BadRequest", "the namespace of the object does not match the URL")
        meta.update(namespace=namespace, uid=secrets.token_hex(8), creationTimestamp="2026-11-29T00:00:00Z")
        key = (plural, namespace, meta["name"])
        with self.cond:
            if key in self.objects:
                return self._status(h, 409, "AlreadyExists", f'{plural}.argoproj.io "{meta["name"]}" already exists')
            obj = self._store(key, "ADDED", {**body, "metadata": meta})
        return self._json(h, 201, obj)

    def _watch(self, h: BaseHTTPRequestHandler, namespace: str, plural: str, query: dict[str, list[str]]) -> None:
        since = int(query.get("resourceVersion", ["0"])[0] or 0)
        selector = query.get("fieldSelector", [""])[0]
        wanted = selector.removeprefix("metadata.name=") if selector.startswith("metadata.name=") else None
        end = time.monotonic() + min(float(query.get("timeoutSeconds", ["30"])[0]), 30.0)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        with self.cond:
            expired, self.expire_watches = self.expire_watches > 0, max(0, self.expire_watches - 1)
        if expired:
            gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
                    "message": f"too old resource version: {since}"}
            self._chunk(h, json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            self._chunk(h, b"")
            return
        sent = since
        while True:  # bounded by the request's timeoutSeconds (at most 30 s)
            with self.cond:
                self.cond.wait_for(functools.partial(self._news, sent), max(0.0, end - time.monotonic()))
                fresh = [e for e in self.events if e[0] > sent]
                closing = self.closing
            for version, key, kind, obj in fresh:
                sent = version
                ours = key[:2] == (plural, namespace) and (wanted is None or key[2] == wanted)
                if ours and not self._chunk(h, json.dumps({"type": kind, "object": obj}).encode() + b"\n"):
                    return
            if closing or time.monotonic() >= end:
                self._chunk(h, b"")  # the last chunk: the watch ended
                return

    @staticmethod
    def _chunk(h: BaseHTTPRequestHandler, data: bytes) -> bool:
        """One chunk of a chunked response (an empty one ends it); False when the client has gone."""
        try:
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            h.wfile.flush()
            return True
        except OSError:
            return False

    def _news(self, since: int) -> bool:
        return self.closing or any(e[0] > since for e in self.events)

    def _json(self, h: BaseHTTPRequestHandler, code: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _status(self, h: BaseHTTPRequestHandler, code: int, reason: str, message: str) -> None:
        self._json(h, code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                             "reason": reason, "code": code})
