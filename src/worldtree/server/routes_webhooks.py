"""``POST /api/v1/webhooks/{provider}``: GitHub, GitLab and Gitea webhooks (seed 002's gateway).

No token: the provider's signature is the authentication (a bad or missing one is 401 and
nothing is stored). The handler only translates HTTP to :func:`worldtree.gitops.gateway.receive`
and wakes this replica's delivery consumer. ``GET /api/v1/deliveries`` lists what arrived.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from worldtree.app.service import NotFoundError
from worldtree.errors import UsageError
from worldtree.gitops.gateway import MAX_BODY_BYTES, KeyMismatchError, SignatureError, receive
from worldtree.gitops.repos import gitops_store
from worldtree.server.auth import require
from worldtree.server.errors import error_body

router = APIRouter(tags=["gitops"])


@router.post("/api/v1/webhooks/{provider}", openapi_extra={"x-authenticated-by": "webhook signature"})
async def webhook(request: Request, provider: str) -> JSONResponse:
    """A webhook delivery: 202 ``queued``, 200 ``duplicate``/``ignored``/``pong``; 401 bad signature; 404 unknown
    repository; 422 no delivery id or an unusable payload."""
    from anyio import to_thread

    body = await _body(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    runtime = request.app.state.runtime
    gitops = request.app.state.gitops
    try:
        result = await to_thread.run_sync(lambda: receive(runtime.store, gitops.secrets, provider, headers, body))
    except SignatureError as exc:
        return JSONResponse(error_body("unauthorized", str(exc)), status_code=401)
    except NotFoundError:
        raise  # 404 through the shared translation
    except UsageError as exc:  # no delivery id, a payload without the fields needed
        return JSONResponse(error_body("invalid_payload", str(exc)), status_code=422)
    except KeyMismatchError as exc:
        return JSONResponse(error_body("secret_key_mismatch", str(exc)), status_code=500)
    if result["status"] == "queued":  # on the queue (JetStream with --events) before the answer
        await to_thread.run_sync(gitops.notify, result["id"], f"{provider}:{result['delivery']}")
        return JSONResponse(result, status_code=202)
    return JSONResponse(result, status_code=200)


@router.get("/api/v1/deliveries", **require("viewer"))
def deliveries(request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """Webhook deliveries, newest first: event, state (queued, done, skipped, failed), why, the run, the status."""
    rows = gitops_store(request.app.state.runtime.store).deliveries(limit=limit)
    return {"items": [{"id": r.id, "provider": r.provider, "delivery_id": r.delivery_id, "event": r.event,
                       "state": r.state, "detail": r.detail, "sha": r.sha, "ref": r.ref, "run_id": r.run_id,
                       "pipeline": r.pipeline, "reported": r.reported, "tries": r.tries,
                       "received_at": r.received_at.isoformat()} for r in rows]}


async def _body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise UsageError(f"the webhook body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
