"""A Docker Registry HTTP API v2 server on loopback that serves one real image, behind basic auth.

The image comes from the local engine, exported into an OCI image layout (``podman push
IMAGE oci:DIR:TAG``), so the manifest, config and layer blobs are exactly what a real registry
would serve. It speaks HTTPS when given a certificate (:func:`self_signed_certificate`), plain
HTTP otherwise. Only what a pull uses is implemented: ``GET /v2/``, ``GET|HEAD`` of manifests
(by tag or digest) and blobs. Every request needs the configured username and password;
without them the answer is 401 with a ``WWW-Authenticate: Basic`` challenge, as
``registry:2`` with htpasswd answers. Requests are recorded so a test can tell what was pulled
and with which credentials.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["FakeRegistry", "Request", "export_oci_layout", "self_signed_certificate"]

_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_BLOB = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")


def export_oci_layout(image: str, directory: Path, tag: str) -> None:
    """Write local ``image`` as an OCI layout at ``directory`` under ``tag`` (podman's CLI, same
    storage as its API service)."""
    subprocess.run(["podman", "push", "--quiet", image, f"oci:{directory}:{tag}"], check=True,
                   capture_output=True, text=True, timeout=120)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """``(cert.pem, key.pem)`` for 127.0.0.1, valid for a day; the certificate is its own CA."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


class _Server(ThreadingHTTPServer):
    """Optionally TLS; the handshake runs in the connection's thread, never in the accept loop."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up (or failing the handshake) is not the test's concern


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    authorized: bool  # carried the configured username and password


class FakeRegistry:
    """``with FakeRegistry(layout, "team/tool", "1.0", "user", "pw") as reg:`` -> ``reg.address``.

    ``certificate`` (cert, key) serves HTTPS; without it, plain HTTP.
    """

    def __init__(self, layout: Path, repository: str, tag: str, username: str, password: str,
                 certificate: tuple[Path, Path] | None = None) -> None:
        self.repository, self.tag = repository, tag
        self._layout = layout
        self._expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        index = json.loads((layout / "index.json").read_text())
        by_tag = {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m
                  for m in index["manifests"]}
        if tag not in by_tag:
            raise ValueError(f"{layout}: no manifest tagged {tag!r}")
        self.manifest_digest: str = by_tag[tag]["digest"]
        self.manifest_type: str = by_tag[tag]["mediaType"]
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        if certificate is not None:
            self._server.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._server.tls.load_cert_chain(*certificate)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-registry", daemon=True)

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the registry part of an image reference."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def image(self) -> str:
        return f"{self.address}/{self.repository}:{self.tag}"

    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def __enter__(self) -> FakeRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- used by the handler -----------------------------------------------------------------

    def _record(self, method: str, path: str, authorized: bool) -> None:
        with self._lock:
            self._requests.append(Request(method, path, authorized))

    def _authorized(self, header: str | None) -> bool:
        return header is not None and hmac.compare_digest(header.encode(), self._expected.encode())

    def _blob(self, digest: str) -> bytes | None:
        path = self._layout / "blobs" / "sha256" / digest.split(":", 1)[1]
        return path.read_bytes() if path.is_file() else None


def _handler(registry: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve(body=True)

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows the recorded requests when an assertion fails

        def _serve(self, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            authorized = registry._authorized(self.headers.get("Authorization"))
            registry._record(self.command, path, authorized)
            if not authorized:
                self._error(401, "UNAUTHORIZED", "authentication required", body,
                            {"WWW-Authenticate": 'Basic realm="worldtree-test-registry"'})
            elif path in ("/v2", "/v2/"):
                self._send(200, b"{}", "application/json", body)
            elif match := _MANIFEST.match(path):
                self._manifest(match["name"], match["ref"], body)
            elif match := _BLOB.match(path):
                blob = registry._blob(match["digest"]) if match["name"] == registry.repository else None
                if blob is None:
                    self._error(404, "BLOB_UNKNOWN", "blob unknown to registry", body)
                else:
                    self._send(200, blob, "application/octet-stream", body,
                               {"Docker-Content-Digest": match["digest"]})
            else:
                self._error(404, "NAME_UNKNOWN", "repository name not known to registry", body)

        def _manifest(self, name: str, ref: str, body: bool) -> None:
            if name != registry.repository or ref not in (registry.tag, registry.manifest_digest):
                self._error(404, "MANIFEST_UNKNOWN", "manifest unknown", body)
                return
            content = registry._blob(registry.manifest_digest) or b""
            self._send(200, content, registry.manifest_type, body,
                       {"Docker-Content-Digest": registry.manifest_digest})

        def _error(self, status: int, code: str, message: str, body: bool,
                   headers: dict[str, str] | None = None) -> None:
            payload = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
            self._send(status, payload, "application/json", body, headers)

        def _send(self, status: int, content: bytes, content_type: str, body: bool,
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if body:
                self.wfile.write(content)

    return Handler
