"""WebSockets: seed 003's action protocol at ``/``, and the twins of the SSE streams under ``/api/v1/ws``.

**Seed 003's protocol** (go-idp/pipeline's ``pipeline server``/``client``): the client connects to
``ws://HOST:PORT/`` with ``Authorization: Basic`` (the token as password) or ``Bearer``, and sends
text frames ``{"type": "run", "payload": "<pipeline YAML>"}``. The document goes through the
same path as ``POST /api/v1/runs`` (checked, stored, queued; an executor of any replica runs it),
and the connection gets ``{"type": "stdout"|"stderr", "payload": "<line>\\n"}`` as lines are
committed, then ``{"type": "done", "payload": ""}`` when the run succeeded, or
``{"type": "error", "payload": "<why>"}``. As in that tool, closing the connection before the
end cancels the runs it started (its server runs the pipeline in the connection's context).

**Twins** (same payloads as the SSE streams; resume with ``?after=N`` instead of
``Last-Event-ID``): ``/api/v1/ws/runs/{id}/logs``, ``/api/v1/ws/runs/{id}/events``,
``/api/v1/ws/events``. Each frame is JSON ``{"id", "event", "data"}``; the last one of a run's
stream is ``{"event": "end", "data": {"state"}}``.

A follower only reads the store (or the event hub's bounded queue): a slow client delays only
itself, never the run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from anyio import to_thread
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from worldtree.app import service
from worldtree.errors import UsageError, WorldtreeError
from worldtree.server.auth import AuthError, authorize
from worldtree.server.streams import Ended, follow_lines

log = logging.getLogger("worldtree.server.ws")

router = APIRouter()

#: Close codes: a refused handshake (authentication); the application's 4000 + HTTP status otherwise.
POLICY_VIOLATION = 1008
NOT_FOUND, BAD_REQUEST = 4404, 4400


async def _admitted(websocket: WebSocket, role: str) -> bool:
    """Check the handshake's token for ``role``; refuse the handshake (HTTP 403) when it fails."""
    runtime = websocket.app.state.runtime
    try:
        await to_thread.run_sync(authorize, runtime, websocket.headers.get("authorization"), role)
    except AuthError as exc:
        await websocket.close(code=POLICY_VIOLATION, reason=str(exc)[:120])
        return False
    await websocket.accept()
    return True


# -- seed 003's action protocol ------------------------------------------------------------------
@router.websocket("/")
async def seed003(websocket: WebSocket) -> None:
    """Seed 003's ``pipeline client``: ``run`` frames in; ``stdout``/``stderr``, then ``done`` or ``error``."""
    if not await _admitted(websocket, "maintainer"):
        return
    runtime = websocket.app.state.runtime
    lock = anyio.Lock()
    started: list[str] = []
    ended: set[str] = set()

    async def send(kind: str, payload: str) -> None:
        async with lock:
            await websocket.send_text(json.dumps({"type": kind, "payload": payload}))

    async def run(document: str) -> None:
        try:
            try:
                await follow(document)
            except WorldtreeError as exc:  # a bad document (located, as the CLI prints it), the store away, ...
                await send("error", str(exc))
            except WebSocketDisconnect:
                raise
            except Exception as exc:  # the connection (and its other runs) outlives a bug, loudly
                log.exception("seed 003 run frame")
                await send("error", f"internal error: {type(exc).__name__}")
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client is gone (a send after its close): the receive loop ends the connection

    async def follow(document: str) -> None:
        created = await to_thread.run_sync(lambda: service.submit(runtime.store, runtime.config, document))
        run_id = str(created["id"])
        started.append(run_id)
        runtime.wake.set()
        async for item in follow_lines(runtime.store, run_id, node=None, after=0):
            if isinstance(item, Ended):
                ended.add(run_id)
                if item.state == "succeeded":
                    await send("done", "")
                else:
                    await send("error", await to_thread.run_sync(_why, runtime.store, run_id, item.state))
                return
            await send("stderr" if item.stream == "stderr" else "stdout", item.line + "\n")

    try:
        async with anyio.create_task_group() as tasks:
            while True:
                try:
                    message = await websocket.receive()
                except WebSocketDisconnect:
                    message = {"type": "websocket.disconnect"}
                if message["type"] == "websocket.disconnect":
                    tasks.cancel_scope.cancel()
                    break
                raw = message.get("text")
                if raw is None:  # a binary frame (receive_text's KeyError closed the connection: 1006)
                    await send("error", "binary frames are not read; send a text frame "
                                        "{\"type\": \"run\", \"payload\": \"<pipeline YAML>\"}")
                    continue
                document, refusal = _action(raw)
                if document is None:
                    await send("error", refusal)
                    continue
                tasks.start_soon(run, document)
    finally:
        # As in seed 003 (the run lives in the connection's context): a client gone mid-run cancels it.
        for run_id in started:
            if run_id not in ended:
                await to_thread.run_sync(_cancel_quietly, runtime.store, run_id)


def _action(raw: str) -> tuple[str | None, str]:
    """``(document, "")`` for a ``run`` frame, else ``(None, why the frame is refused)``."""
    try:
        frame = json.loads(raw)
    except RecursionError:  # '[' * 100000: json gives up; it took the connection down with it
        return None, "the frame nests too deeply; send {\"type\": \"run\", \"payload\": \"<pipeline YAML>\"}"
    except ValueError as exc:
        return None, f"the frame is not JSON ({exc}); send {{\"type\": \"run\", \"payload\": \"<pipeline YAML>\"}}"
    if not isinstance(frame, dict) or not isinstance(frame.get("payload", ""), str):
        return None, "a frame is a JSON object {\"type\": ..., \"payload\": \"<text>\"}"
    if frame.get("type") != "run":
        return None, f"unsupported action type: {frame.get('type')}"
    return str(frame.get("payload") or ""), ""


def _cancel_quietly(store: Any, run_id: str) -> None:
    try:
        service.cancel(store, run_id, reason="the seed 003 client disconnected")
    except UsageError:  # it ended meanwhile
        pass
    except Exception:  # the store is away: the run goes on; say so
        log.exception("could not cancel run %s after its client disconnected", run_id)


def _why(store: Any, run_id: str, state: str) -> str:
    """``run X failed: build/main/test: exit code 3`` — the first nodes that did not succeed."""
    try:
        view = service.get_run(store, run_id)
    except UsageError:
        return f"run {run_id} {state}"
    bad = [n for n in view["nodes"] if n["state"] not in ("succeeded", "skipped", "reused", "pending")]
    details = []
    for node in bad[:3]:
        what = node["error"] or (f"exit code {node['exit_code']}" if node["exit_code"] is not None else node["state"])
        details.append(f"{node['path']}: {what}")
    reason = f" ({view['cancel_reason']})" if state == "cancelled" and view.get("cancel_reason") else ""
    return f"run {run_id} {state}{reason}" + (": " + "; ".join(details) if details else "")


# -- twins of the SSE streams -----------------------------------------------------------------------
async def _pump(websocket: WebSocket, frames: AsyncIterator[dict[str, Any]]) -> None:
    """Send ``frames`` until they end or the client leaves (a receive task notices the close)."""

    async def watch_close(cancel: Callable[[], None]) -> None:
        try:
            while True:
                await websocket.receive()
                if websocket.client_state != WebSocketState.CONNECTED:
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        cancel()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch_close, tasks.cancel_scope.cancel)
        try:
            async for frame in frames:
                await websocket.send_text(json.dumps(frame))
            await websocket.close()
        except (WebSocketDisconnect, RuntimeError):
            pass
        tasks.cancel_scope.cancel()


def _after(websocket: WebSocket) -> int:
    value = websocket.query_params.get("after", "0")
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"after must be an event id (an integer), not {value!r}") from None
    if number < 0:
        raise UsageError("after must be 0 or more")
    return number


async def _refuse(websocket: WebSocket, exc: UsageError) -> None:
    await websocket.send_text(json.dumps({"event": "error", "data": {"message": str(exc)}}))
    await websocket.close(code=NOT_FOUND if isinstance(exc, service.NotFoundError) else BAD_REQUEST)


async def _twin(websocket: WebSocket, frames: Callable[[int], Awaitable[AsyncIterator[dict[str, Any]]]]) -> None:
    if not await _admitted(websocket, "viewer"):
        return
    try:
        stream = await frames(_after(websocket))
    except UsageError as exc:
        await _refuse(websocket, exc)
        return
    await _pump(websocket, stream)


@router.websocket("/api/v1/ws/runs/{run_id}/logs")
async def ws_logs(websocket: WebSocket, run_id: str) -> None:
    """A run's lines: ``{"id": seq, "event": "line", "data": {node, stream, line, ts}}``, then ``end``."""
    store = websocket.app.state.runtime.store
    node = websocket.query_params.get("node")

    async def frames(after: int) -> AsyncIterator[dict[str, Any]]:
        full = await to_thread.run_sync(service.resolve, store, run_id)

        async def lines() -> AsyncIterator[dict[str, Any]]:
            async for item in follow_lines(store, full, node=node, after=after):
                if isinstance(item, Ended):
                    yield {"id": None, "event": "end", "data": {"state": item.state}}
                    return
                yield {"id": item.seq, "event": "line", "data": {
                    "node": item.node, "stream": item.stream, "line": item.line, "ts": item.ts.isoformat()}}

        return lines()

    await _twin(websocket, frames)


@router.websocket("/api/v1/ws/runs/{run_id}/events")
async def ws_run_events(websocket: WebSocket, run_id: str) -> None:
    """A run's node state changes (the payloads of ``GET /api/v1/runs/{id}/events``), then ``end``."""
    from worldtree.server.routes_events import run_event_frames

    async def frames(after: int) -> AsyncIterator[dict[str, Any]]:
        return await run_event_frames(websocket.app, run_id, after)

    await _twin(websocket, frames)


@router.websocket("/api/v1/ws/events")
async def ws_events(websocket: WebSocket) -> None:
    """Every run's lifecycle events (the payloads of ``GET /api/v1/events``); never ends on its own."""
    from worldtree.server.routes_events import event_frames

    async def frames(after: int) -> AsyncIterator[dict[str, Any]]:
        return await event_frames(websocket.app, after)

    await _twin(websocket, frames)
