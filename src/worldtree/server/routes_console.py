"""The web console: static assets under ``/console``, ``/`` sending browsers there, and ``whoami``.

The console is plain ES modules shipped inside the package (no Node build at install); it talks
to the same REST API as every other client, with the token the user typed in. Every path under
``/console`` that is not an asset answers the single page (``index.html``), whose router reads
the address (``/console/runs/{id}``), so links and reloads work. The page learns its role from
``GET /api/v1/whoami`` and hides what that role may not do; the server still enforces it.

None of these routes except ``whoami`` appear in the OpenAPI document: they are not API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from worldtree import __version__
from worldtree.server.auth import require

#: The console's files (``index.html``, ``css/``, ``js/``, ``vendor/``), package data.
ASSETS = Path(__file__).parent / "console"
#: Asset types served; anything else under ``/console`` is the page itself.
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml",
          ".md": "text/markdown"}
#: The page must not be framed by another site, and loads nothing from anywhere else.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter()


@router.get("/", include_in_schema=False)
def root(request: Request) -> Response:
    """Browsers (``Accept: text/html``) go to the console; other clients learn where things are."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/console", status_code=307)
    return JSONResponse({"name": "worldtree", "version": __version__, "api": "/api/v1", "console": "/console",
                         "openapi": "/openapi.json"})


@router.get("/console", include_in_schema=False)
@router.get("/console/{path:path}", include_in_schema=False)
def console(path: str = "") -> Response:
    """An asset when ``path`` names one (``js/app.js``), else the page for the console's router."""
    asset = _asset(path)
    if asset is not None:
        return FileResponse(asset, media_type=_TYPES[asset.suffix], headers=_HEADERS)
    if Path(path).suffix in _TYPES and path.split("/", 1)[0] in ("js", "css", "vendor"):
        return JSONResponse({"error": {"code": "not_found", "message": f"no console asset {path!r}",
                                       "details": None}}, status_code=404)
    return FileResponse(ASSETS / "index.html", media_type="text/html", headers=_HEADERS)


@router.get("/api/v1/whoami", tags=["tokens"], **require("viewer"))
def whoami(request: Request) -> dict[str, Any]:
    """The caller's token (id, name, role; never the token itself). Without authentication
    (``--no-auth``) everyone may do everything: ``role`` is ``admin`` and ``auth`` false."""
    if not request.app.state.runtime.auth:
        return {"token_id": None, "name": None, "role": "admin", "auth": False}
    record = request.state.token
    return {"token_id": record.id, "name": record.name, "role": record.role, "auth": True}


def _asset(path: str) -> Path | None:
    """The file for ``path`` inside :data:`ASSETS`, or None (never a file outside it: ``..`` is refused)."""
    if not path or Path(path).suffix not in _TYPES:
        return None
    root = ASSETS.resolve()
    try:
        candidate = (root / path).resolve()
        found = candidate.is_relative_to(root) and candidate.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long for the file system: no such asset
        return None
    return candidate if found else None
