"""Secret masking: every secret value and the forms it commonly takes in output become ``***``
wherever worldtree writes text (console, stored logs, events, errors, plans).

Forms covered, because tools print secrets that way without being asked:

* each line of a multi-line value (output is masked line by line);
* base64, standard and URL-safe, with and without padding, and cut into the 76-column lines
  ``base64`` prints by default (a value of 58 bytes or more spans two lines);
* the value inside a larger base64 string (``user:SECRET`` in an HTTP Basic header), at each
  of the three byte alignments: only the characters that depend on the value alone;
* URL-encoded (``quote``, ``quote_plus``), JSON-escaped, and shell-quoted as ``set -x`` prints
  it (bash ``'\\''``, dash ``'"'"'``).
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

MASK = "***"
#: Shorter values are not masked: hiding every "a" or "1" would destroy the log, and a
#: one- or two-character value protects nothing.
MIN_SECRET_LENGTH = 3
#: Derived fragments (a base64 line, an aligned slice) shorter than this are not masked: they
#: would match ordinary text by chance.
MIN_FRAGMENT_LENGTH = 8
#: ``base64`` (coreutils) wraps its output at this column by default.
BASE64_WRAP = 76


class Masker:
    """Replaces known secret values in text. Immutable once built; cheap when there are none."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        needles: set[str] = set()
        for value in secrets or []:
            if len(value) < MIN_SECRET_LENGTH:
                continue
            needles.update(v for v in _variants(value) if len(v) >= MIN_SECRET_LENGTH)
            needles.update(f for f in _fragments(value) if len(f) >= MIN_FRAGMENT_LENGTH)
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


def _variants(value: str) -> set[str]:
    """Whole forms of the value: itself, its lines, and their encodings."""
    forms = {value}
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    if len(lines) > 1:
        forms.update(lines)
    out = set(forms)
    for item in forms:
        raw = item.encode()
        encoded = base64.b64encode(raw).decode()
        out.update({encoded, encoded.rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")})
        out.update({quote(item, safe=""), quote(item), quote_plus(item),
                    json.dumps(item)[1:-1], json.dumps(item, ensure_ascii=False)[1:-1],
                    item.replace("'", "'\\''"), item.replace("'", "'\"'\"'")})
    return out


def _fragments(value: str) -> set[str]:
    """Parts of base64 text that give the value away: wrapped lines, and slices inside a larger string."""
    raw = value.encode()
    out: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        out.update(whole[i:i + BASE64_WRAP] for i in range(0, len(whole), BASE64_WRAP))
        for align in range(3):
            # With ``align`` bytes before it, output characters [first, last) depend on the value alone.
            text = encode(b"\0" * align + raw).decode().rstrip("=")
            first, last = -(-8 * align // 6), 8 * (align + len(raw)) // 6
            out.add(text[first:last])
    return out
