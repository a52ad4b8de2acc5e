"""Every error leaves the API as ``{"error": {"code", "message", "details"}}`` with a fitting status.

worldtree's own errors are translated here, once: a located document error is 422 with its
diagnostics (``line``, ``col``, ``message``) in ``details``; a missing run 404; a state that does
not allow the operation, or a lost compare-and-set, 409; other bad input 400; a store that cannot
be reached 503. Anything else is a 500 without a traceback in the body.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from worldtree.app.service import NotFoundError, StateConflictError
from worldtree.errors import ConflictError, SpecError, StoreError, UsageError
from worldtree.server.auth import AuthError

log = logging.getLogger("worldtree.server")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _json(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status)


def _data_error(exc: BaseException) -> str | None:
    """The database's words when ``exc`` comes from a value it refuses (a NUL byte or a string too long
    for PostgreSQL), else None. Only the driver's first line: the statement and its parameters stay out."""
    from sqlalchemy.exc import DataError

    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, DataError):
            return str(seen.orig).splitlines()[0] if seen.orig is not None else "invalid value"
        seen = seen.__cause__ or seen.__context__
    return None


def install(app: FastAPI) -> None:
    """Register the translations on ``app``."""

    @app.exception_handler(AuthError)
    async def auth(request: Request, exc: AuthError) -> JSONResponse:
        response = _json(exc.status, "unauthorized" if exc.status == 401 else "forbidden", str(exc))
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="worldtree", Basic realm="worldtree"'
        return response

    @app.exception_handler(SpecError)
    async def spec_error(request: Request, exc: SpecError) -> JSONResponse:
        details = [{"line": d.line, "col": d.col, "message": d.message, "severity": d.severity, "code": d.code}
                   for d in exc.diagnostics]
        first = exc.diagnostics[0].render() if exc.diagnostics else "invalid document"
        return _json(422, "invalid_document", first, details)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return _json(404, "not_found", str(exc))

    @app.exception_handler(StateConflictError)
    async def state_conflict(request: Request, exc: StateConflictError) -> JSONResponse:
        return _json(409, "conflict", str(exc))

    @app.exception_handler(ConflictError)
    async def conflict(request: Request, exc: ConflictError) -> JSONResponse:
        return _json(409, "conflict", str(exc))

    @app.exception_handler(UsageError)
    async def usage(request: Request, exc: UsageError) -> JSONResponse:
        return _json(400, "bad_request", str(exc))

    @app.exception_handler(StoreError)
    async def store(request: Request, exc: StoreError) -> JSONResponse:
        refused = _data_error(exc)
        if refused is not None:  # the request's value, not the store: 400, not a 503 that says "retry"
            return _json(400, "bad_request", f"the database refuses a value of the request: {refused}; change it")
        log.error("store error on %s %s: %s", request.method, request.url.path, exc)
        return _json(503, "store_unavailable", "the run store cannot be reached; try again later")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
        return _json(422, "invalid_request", "the request's parameters or body are invalid", details)

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _json(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _json(500, "internal", f"internal error: {type(exc).__name__}")
