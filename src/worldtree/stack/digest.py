"""A plan's digest: what it was made from, so apply can refuse a plan the world has moved past.

The digest hashes the normalized stack (after ``--env`` merging), the env name and the prior
applied state (what earlier applies recorded). Editing the stack, choosing another env, or any
apply in between changes it, and ``apply`` then says "plan was made for a different stack or
state; run plan again" (as ``terraform apply`` refuses a stale saved plan).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from worldtree.stack.model import Stack


def canonical(data: Any) -> bytes:
    """One byte string per value: sorted keys, no whitespace, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def plan_digest(stack: Stack, env: str, state: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for part in (stack.normalized(), env, state):
        h.update(canonical(part))
        h.update(b"\0")
    return "sha256:" + h.hexdigest()
