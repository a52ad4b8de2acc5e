"""Run ids: ``YYYYMMDD-HHMMSS-mmrrr`` (UTC), short enough to type, sortable by creation time.

``mm`` is the millisecond in two base-32 digits and ``rrr`` three random base-32 digits, so
ids made in one process sort in creation order (within one millisecond the random part is
incremented, as ULID's monotonic mode does) and ids made in other processes collide only
with a chance of 1 in 32,768 per millisecond — the store retries the insert if they do.
"""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime

#: Crockford's base 32, lowercase: ASCII order equals numeric order, no i/l/o/u to misread.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RANDOM_SPACE = 32**3

_lock = threading.Lock()
_last: tuple[str, int] = ("", 0)


def _b32(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, rest = divmod(value, 32)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits))


def new_run_id(now: datetime | None = None) -> str:
    """A fresh run id for the time ``now`` (default: the current UTC time)."""
    global _last
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.strftime("%Y%m%d-%H%M%S-") + _b32(moment.microsecond // 1000, 2)
    with _lock:
        last_stamp, last_random = _last
        if stamp == last_stamp and last_random + 1 < _RANDOM_SPACE:
            random_part = last_random + 1
        else:
            # Leave headroom so the monotonic increments rarely overflow.
            random_part = secrets.randbelow(_RANDOM_SPACE // 2)
        _last = (stamp, random_part)
    return stamp + _b32(random_part, 3)
