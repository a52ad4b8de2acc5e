"""The webhook gateway's logic (seed 002): authenticate, parse, store once, queue.

Order matters: the repository is looked up by the name in the body (unknown → 404), the body is
authenticated with *that* repository's secret (bad or missing → :class:`SignatureError`, nothing
stored), and only then is anything parsed or written. The store's unique
``(provider, delivery_id)`` index makes a replay a no-op answered ``duplicate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worldtree.app.secrets_store import SecretKeys
from worldtree.app.service import NotFoundError
from worldtree.errors import UsageError, WorldtreeError
from worldtree.gitops.payloads import PROVIDERS, parse_event, repository_name
from worldtree.gitops.repos import gitops_store
from worldtree.gitops.signatures import DELIVERY_HEADER, EVENT_HEADER, verify
from worldtree.store.api import RunStore

#: Events that go on the queue; the others are acknowledged and recorded as skipped.
QUEUED_KINDS = ("push", "pull_request", "create")
#: A webhook body larger than this is refused before it is read whole (GitHub caps payloads at 25 MB).
MAX_BODY_BYTES = 25 * 1024 * 1024


class SignatureError(WorldtreeError):
    """The webhook's signature (or token) is missing or wrong: 401, nothing stored."""


class KeyMismatchError(WorldtreeError):
    """The repository's webhook secret was stored with another key than this server's (500, said so)."""


def receive(store: RunStore, secrets: SecretKeys, provider: str, headers: Mapping[str, str],
            body: bytes) -> dict[str, Any]:
    """Accept one delivery: ``{"status": "queued"|"duplicate"|"ignored"|"pong", ...}``.

    ``headers`` with lower-case names. NotFoundError (unknown provider or repository),
    SignatureError, UsageError (no delivery id, a malformed payload).
    """
    if provider not in PROVIDERS:
        raise NotFoundError(f"no webhook endpoint for {provider!r}; use one of {', '.join(PROVIDERS)}")
    name = repository_name(provider, body)
    gs = gitops_store(store)
    repo = gs.repository(provider=provider, name=name) if name else None
    if repo is None:
        shown = f"{provider} repository {name}" if name else f"the repository of this {provider} payload"
        raise NotFoundError(f"{shown} is not registered; `worldtree repo add` it first")
    try:
        secret = secrets.decrypt(repo.webhook_secret)
    except Exception:  # cryptography's InvalidToken: another key; the message names no secret
        raise KeyMismatchError(f"the webhook secret of {repo.name} was stored with another key than this server's "
                               "($WORLDTREE_SECRET_KEY or <data dir>/secret.key); run `worldtree repo add` with "
                               "the server's --data-dir or key") from None
    if not verify(provider, secret, body, headers):
        raise SignatureError(f"the {provider} webhook signature is missing or wrong; set the webhook's secret to "
                             f"the one registered for {repo.name}")
    delivery_id = headers.get(DELIVERY_HEADER[provider], "").strip()
    if not delivery_id or len(delivery_id) > 200:
        raise UsageError(f"the {DELIVERY_HEADER[provider]} header (the delivery's unique id) is missing or too long")
    event_name = headers.get(EVENT_HEADER[provider], "").strip()
    if not event_name:
        raise UsageError(f"the {EVENT_HEADER[provider]} header is missing")
    event = parse_event(provider, event_name, body)
    queued = event.kind in QUEUED_KINDS
    state, detail = ("queued", None) if queued else ("skipped", f"{event_name}: nothing to run")
    row_id = gs.add_delivery(provider=provider, delivery_id=delivery_id, repository_id=repo.id, event=event_name,
                             payload=body.decode("utf-8", "replace"), state=state, detail=detail)
    if row_id is None:
        return {"status": "duplicate", "delivery": delivery_id}
    if event.kind == "ping":
        return {"status": "pong", "delivery": delivery_id, "repository": repo.name}
    return {"status": "queued" if queued else "ignored", "delivery": delivery_id, "id": row_id,
            "repository": repo.name, "event": event.kind}
