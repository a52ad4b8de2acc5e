"""Secret masking: every secret value, its base64 forms and each line of a multi-line value
become ``***`` wherever worldtree writes text (console, stored logs, events, errors, plans)."""

from __future__ import annotations

import base64
import re

MASK = "***"
#: Shorter values are not masked: hiding every "a" or "1" would destroy the log, and a
#: one- or two-character value protects nothing.
MIN_SECRET_LENGTH = 3


class Masker:
    """Replaces known secret values in text. Immutable once built; cheap when there are none."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        needles: set[str] = set()
        for value in secrets or []:
            for variant in _variants(value):
                if len(variant) >= MIN_SECRET_LENGTH:
                    needles.add(variant)
        self.values = sorted(needles, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, self.values))) if self.values else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def mask_opt(self, text: str | None) -> str | None:
        return None if text is None else self.mask(text)


def _variants(value: str) -> list[str]:
    out = [value]
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    if len(lines) > 1:
        out.extend(lines)
    for item in list(out):
        raw = item.encode()
        encoded = base64.b64encode(raw).decode()
        out.extend({encoded, encoded.rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")})
    return out
