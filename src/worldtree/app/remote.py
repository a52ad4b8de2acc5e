"""The run operations of :mod:`worldtree.app.service`, done by a ``worldtree server`` over its REST API.

An interface that can work either on a local store or against a server (``worldtree mcp
--server URL``) calls the same method names on :class:`RemoteRuns` or on
:class:`worldtree.app.local_runs.LocalRuns` and gets the same plain data back. The server's error
envelope (``{"error": {"code", "message", "details"}}``) is translated back into the exceptions
the service raises locally, so callers handle one set: 422 → :class:`SpecError` (with its
diagnostics), 404 → :class:`NotFoundError`, 409 → :class:`StateConflictError`, other 4xx →
:class:`UsageError`, an unreachable server or a 5xx → :class:`ConnectError`.

The token (``--token`` / ``$WORLDTREE_TOKEN``) is sent as a bearer header and never appears in
an error message.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx

from worldtree.app.service import NotFoundError, StateConflictError
from worldtree.compile.diagnostics import Diagnostic
from worldtree.errors import ConnectError, SpecError, UsageError

#: Seconds for one request (a submit compiles the document on the server; 30 s is generous).
TIMEOUT = 30.0


class RemoteRuns:
    """Runs on a server: ``submit``, ``list_runs``, ``get_run``, ``logs``, ``cancel``, ``retry``, ``explain_job``.

    Thread-safe (one ``httpx.Client``, which is); ``close`` when done.
    """

    def __init__(self, server: str, token: str | None = None, *, timeout: float = TIMEOUT) -> None:
        self.server = server.rstrip("/")
        if not self.server.startswith(("http://", "https://")):
            raise UsageError(f"--server {server!r}: write the server's base URL, e.g. http://127.0.0.1:8080")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)
        #: the server as messages name it: a password in its URL masked
        self.shown = _USERINFO.sub(r"\1:***@", self.server)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, filename: str = "<request>", **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ConnectError(f"cannot reach {self.shown}: {type(exc).__name__}; "
                               "is `worldtree server` running there?") from None
        if response.status_code >= 400:
            raise _error(response, self.shown, filename)
        try:
            body = response.json() if response.content else None
        except ValueError:  # a proxy's HTML page, a different service: not a crash of the caller
            body = None
        if not isinstance(body, dict):
            raise ConnectError(f"{self.shown} answered {method} {path} ({response.status_code}) with something that "
                               "is not a JSON object; is it a worldtree server (and the URL its base)?")
        return body

    def submit(self, document: str, *, env: dict[str, str] | None = None,
               filename: str = "<request>") -> dict[str, Any]:
        """Queue ``document``; ``{"id", "state": "queued"}``."""
        body = self._call("POST", "/api/v1/runs", filename, json={"document": document, "env": dict(env or {})})
        return {"id": body["id"], "state": body.get("state", "queued")}

    def list_runs(self, *, page: int = 1, page_size: int = 50, state: str | None = None,
                  pipeline: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if state:
            params["state"] = state
        if pipeline:
            params["pipeline"] = pipeline
        return dict(self._call("GET", "/api/v1/runs", params=params))

    def get_run(self, run_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/runs/{_segment(run_id)}"))

    def logs(self, run_id: str, *, node: str | None = None, offset: int = 0, limit: int = 1000) -> dict[str, Any]:
        """``{"run_id", "items": [line], "next_offset"}``, lines after sequence number ``offset``."""
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if node:
            params["node"] = node
        return dict(self._call("GET", f"/api/v1/runs/{_segment(run_id)}/logs", params=params))

    def explain_job(self, job_id: str) -> dict[str, Any]:
        """Why a job (``RUN_ID:KEY``) is pending: the server's ``GET /api/v1/jobs/{id}/explain``."""
        return dict(self._call("GET", f"/api/v1/jobs/{quote(job_id, safe=':')}/explain"))

    def cancel(self, run_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/runs/{_segment(run_id)}/cancel"))

    def retry(self, run_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/v1/runs/{_segment(run_id)}/retry"))


def _segment(run_id: str) -> str:
    """A run id as one path segment: ids are hex, so anything else cannot name a run."""
    if not run_id or not all(c.isalnum() or c in "-_" for c in run_id):
        raise NotFoundError(f"no run {run_id!r}; runs.list shows the ids")
    return run_id


_USERINFO = re.compile(r"(//[^/@:]*):[^/@]*@")


def _int(value: Any) -> int:
    """A line or column of a server's diagnostic; 1 when it is not a number."""
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1


def _error(response: httpx.Response, server: str, filename: str) -> Exception:
    try:
        error = response.json()["error"]
        message = str(error.get("message") or response.status_code)
        details = error.get("details")
    except (ValueError, KeyError, TypeError, AttributeError):
        message, details = f"{response.status_code} {response.reason_phrase}", None
    status = response.status_code
    documented = isinstance(details, list) and details and all(isinstance(d, dict) and "line" in d for d in details)
    if status == 422 and documented:
        return SpecError([Diagnostic("warning" if d.get("severity") == "warning" else "error",
                                     str(d.get("code", "invalid")), str(d.get("message", "")), filename,
                                     _int(d.get("line")), _int(d.get("col")))
                          for d in details if isinstance(d, dict)])
    if status == 404:
        return NotFoundError(message)
    if status == 409:
        return StateConflictError(message)
    if status in (401, 403):
        return UsageError(f"{server} refused the call ({status}): {message}; pass a token with the needed role "
                          "(--token or $WORLDTREE_TOKEN)")
    if status < 500:  # e.g. FastAPI's parameter checks: {"loc", "message"} per problem
        said = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('message')}"
                         for d in details if isinstance(d, dict)) if isinstance(details, list) else ""
        return UsageError(f"{message} ({said})" if said else message)
    return ConnectError(f"{server} failed ({status}): {message}")
