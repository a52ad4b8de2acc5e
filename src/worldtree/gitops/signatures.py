"""Webhook authentication, per provider: the signature (or token) is the only auth a webhook has.

* GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``;
* Gitea: ``X-Gitea-Signature: <hex HMAC-SHA256 of the raw body>``;
* GitLab: ``X-Gitlab-Token: <the secret itself>``.

Every comparison is :func:`hmac.compare_digest` (constant time). The delivery id header that makes
replays detectable is also read here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

#: header carrying the delivery's unique id, and the one naming the event, per provider
DELIVERY_HEADER = {"github": "x-github-delivery", "gitlab": "x-gitlab-event-uuid", "gitea": "x-gitea-delivery"}
EVENT_HEADER = {"github": "x-github-event", "gitlab": "x-gitlab-event", "gitea": "x-gitea-event"}


def sign(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``body`` (what GitHub and Gitea send; tests and the benchmark sign with it)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(provider: str, secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether the request carries a valid signature (or token) for ``secret``."""
    if provider == "github":
        given = headers.get("x-hub-signature-256", "")
        # bytes, not str: compare_digest raises TypeError on a non-ASCII str (a header byte 0xE9 was a 500)
        return given.startswith("sha256=") and hmac.compare_digest(given[7:].strip().lower().encode(),
                                                                   sign(secret, body).encode())
    if provider == "gitea":
        given = headers.get("x-gitea-signature", "").strip().lower()
        return bool(given) and hmac.compare_digest(given.encode(), sign(secret, body).encode())
    if provider == "gitlab":
        token = headers.get("x-gitlab-token", "")
        return bool(token) and hmac.compare_digest(token.encode(), secret.encode())
    return False
