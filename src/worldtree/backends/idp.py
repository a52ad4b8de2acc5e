"""``engine: idp://client_id:client_secret@host:port`` (seed 003 §4.4): a step run by a worldtree server.

The step becomes a one-job run on the server at ``host:port`` through its REST API
(``POST /api/v1/jobs`` with the step's command, environment, timeout and the node's label selector);
the server runs it on its own executors or hands it to one of its agents. ``host:port`` is the
server's **HTTP** address (``worldtree server --port``, 8080 by default), not its gRPC port.
``client_secret`` is a worldtree API token (maintainer or admin): it travels as
``Authorization: Bearer``; ``client_id`` only names the caller (``User-Agent``).

While the remote job runs, its log lines arrive over ``GET /api/v1/runs/{id}/logs/stream`` (SSE)
and go to the step's output as they come; the step's result is the remote job's exit code. A
cancelled step (timeout, Ctrl-C, fail-fast) posts ``/api/v1/runs/{id}/cancel`` before it
re-raises, so nothing keeps running on the server.

The token goes only over TLS (``idps://``) or to a loopback host: over plain HTTP to any other host
the step fails before anything is sent. The step's ``secrets:`` are never sent as values: they go
by name and resolve from the server's secret store (``worldtree secret set`` on that server).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
from typing import Any

import httpx

from worldtree.backends.base import OutputSink, RunContext, StepRequest, output_room
from worldtree.errors import BackendError
from worldtree.model.idp import split_idp_url
from worldtree.model.refs import expand_required, names

#: variables the local engine injects for its own run; the server sets its own
_LOCAL_PREFIXES = ("PIPELINE_", "WORLDTREE_")
#: how often a dropped log stream is resumed (``Last-Event-ID``) before the step errors
STREAM_RESUMES = 5
#: a silent connection this long is dead (the server pings a log stream every 15 s): resume it
READ_SECONDS = 60.0
#: bound on the cancel call made while the local step is being cancelled
CANCEL_SECONDS = 10.0


class IdpBackend:
    """Runs ``idp`` steps on a worldtree server. See ``worldtree.backends.base`` for the contract."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._clients: list[httpx.AsyncClient] = []

    async def execute(self, req: StepRequest, output: OutputSink) -> int:
        target = req.node.target
        if not target.engine:
            raise BackendError(f"step {req.node.path}: an idp step needs `engine: idp://…`")
        url = expand_required(target.engine, req.env, f"step {req.node.path}: engine")
        try:
            parts = split_idp_url(url)
        except ValueError as exc:
            raise BackendError(f"step {req.node.path}: {self._scrub(str(exc))}") from None
        server = parts.server
        base = f"{'https' if parts.tls else 'http'}://{server}"
        # the URL's own ${NAME}s (the token) are credentials for the call, not the step's environment:
        # sent as env they would be stored with the remote run for its viewers to read
        own = set(names(target.engine))
        # The step's secrets are not sent as values either: the remote run would store them. They go
        # by name (CreateJob ``secrets``) and resolve from the server's own secret store, encrypted
        # there and masked in its logs (seed 004's model: the server holds the secrets its jobs see).
        held = set(req.node.secrets)
        secret_values = {v for v in self.ctx.secret_values if v}
        env = {k: v for k, v in req.env.items()
               if not k.startswith(_LOCAL_PREFIXES) and k not in own and k not in held and v not in secret_values}
        secret = parts.client_secret
        carries_secret = bool(secret)
        if carries_secret and not parts.tls and not _loopback(parts.host):
            raise BackendError(
                f"step {req.node.path}: idp server {server}: refusing to send the token and secrets over "
                "plain http to a non-loopback host; write idps:// (the server behind TLS)")
        headers = {"User-Agent": f"worldtree-idp/{parts.client_id or 'anonymous'}"}
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        client = httpx.AsyncClient(base_url=base, headers=headers, timeout=httpx.Timeout(30.0, read=READ_SECONDS))
        self._clients.append(client)
        try:
            return await self._run(client, server, req, env, output)
        finally:
            self._clients.remove(client)
            await client.aclose()

    async def _run(self, client: httpx.AsyncClient, server: str, req: StepRequest, env: dict[str, str],
                   output: OutputSink) -> int:
        body: dict[str, Any] = {"name": req.node.path.replace("/", " ")[:200] or "step",
                                "commands": [req.command], "env": env}
        if req.node.timeout:
            body["timeout"] = max(1, math.ceil(req.node.timeout))
        if req.node.selector is not None:
            body["label_selector"] = req.node.selector.model_dump(mode="json")
        by_name = [name for name in req.node.secrets if name not in names(req.node.target.engine or "")]
        if by_name:  # resolved from the server's own secret store (the token of the URL is not one)
            body["secrets"] = by_name
        created = await self._call(client, server, "POST", "/api/v1/jobs", json=body)
        job_id, run_id = str(created["id"]), str(created["run_id"])
        try:
            await self._follow(client, server, run_id, output)
            return await self._result(client, server, job_id)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.post(f"/api/v1/runs/{run_id}/cancel"), CANCEL_SECONDS)
            raise

    async def _follow(self, client: httpx.AsyncClient, server: str, run_id: str, output: OutputSink) -> None:
        """Lines of the remote run into ``output`` until its ``end`` event (resuming a dropped stream)."""
        last = 0
        for _ in range(STREAM_RESUMES + 1):
            headers = {"Last-Event-ID": str(last)} if last else {}
            try:
                async with client.stream("GET", f"/api/v1/runs/{run_id}/logs/stream", headers=headers) as resp:
                    if resp.status_code != 200:
                        await resp.aread()
                        raise BackendError(self._refusal(server, resp))
                    event, ident, data = "message", "", ""
                    async for raw in resp.aiter_lines():
                        if raw:
                            field, _, value = raw.partition(":")
                            value = value[1:] if value.startswith(" ") else value
                            if field == "event":
                                event = value
                            elif field == "id":
                                ident = value
                            elif field == "data":
                                data = f"{data}\n{value}" if data else value
                            continue
                        if event == "end":
                            return
                        if data:
                            await output_room(self.ctx.output_paused)  # the local store is behind: wait
                            try:
                                line = json.loads(data)
                            except ValueError:
                                raise BackendError(f"idp server {server}: a log event that is not JSON "
                                                   "(is that a worldtree server?)") from None
                            if not isinstance(line, dict):
                                continue
                            output("stderr" if line.get("stream") == "stderr" else "stdout", str(line.get("line", "")))
                            if ident.isdigit():
                                last = int(ident)
                        event, ident, data = "message", "", ""
            except httpx.TransportError:
                await asyncio.sleep(0.5)
        raise BackendError(f"idp server {server}: the log stream of run {run_id} kept dropping")

    async def _result(self, client: httpx.AsyncClient, server: str, job_id: str) -> int:
        job = await self._call(client, server, "GET", f"/api/v1/jobs/{job_id}")
        state, code = job.get("state"), job.get("exit_code")
        if state == "succeeded":
            return 0
        errors = [str(n["error"]) for n in job.get("nodes") or [] if n.get("error")]
        if state == "failed" and (code or not errors):
            return int(code or 1)
        reason = errors[0] if errors else f"the job ended {state}"
        raise BackendError(f"idp server {server}: job {job_id}: {self._scrub(reason)}")

    async def _call(self, client: httpx.AsyncClient, server: str, method: str, path: str,
                    **kwargs: Any) -> dict[str, Any]:
        try:
            resp = await client.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise BackendError(f"idp server {server}: cannot connect (is `worldtree server` listening on "
                               "that HTTP port?)") from None
        except httpx.TransportError as exc:
            raise BackendError(f"idp server {server}: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            raise BackendError(self._refusal(server, resp))
        try:
            answer = resp.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise BackendError(f"idp server {server}: {method} {path.split('?')[0]} did not answer JSON "
                               "(is that a worldtree server's HTTP port?)")
        return answer

    def _refusal(self, server: str, resp: httpx.Response) -> str:
        if resp.status_code == 401:
            return f"idp server {server} refused the token (401): check the client_secret of the idp:// URL"
        if resp.status_code == 403:
            return f"idp server {server}: the token may not run jobs (403): it needs the maintainer role"
        try:
            message = str(resp.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = resp.text[:200]
        return f"idp server {server} answered {resp.status_code}: {self._scrub(message)}"

    def _scrub(self, text: str) -> str:
        for value in self.ctx.secret_values:
            if value:
                text = text.replace(value, "***")
        return text

    async def close(self) -> None:
        for client in list(self._clients):
            await client.aclose()
        self._clients.clear()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
