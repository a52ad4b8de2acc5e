"""Durations as users write them: ``600`` (seconds, as seed 003 does), ``"90s"``, ``"15m"``, ``"1h30m"``."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: Longer durations are refused: timers of 1e300 seconds overflow the event loop.
MAX_SECONDS = 10 * 366 * 86400.0


def parse_duration(value: object) -> float:
    """Seconds from an int/float (seconds) or a string of ``<n><unit>`` parts.

    Raises ValueError with a message fit for a diagnostic.
    """
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '90s', '15m', '1h30m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            pos, seconds = 0, 0.0
            for match in _PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNIT[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"invalid duration {value!r}; write seconds (600) or units like '90s', '15m', '1h30m'"
                )
    else:
        raise ValueError("a duration must be a number of seconds or a string like '90s', '15m', '1h30m'")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number of seconds, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"a duration of {value!r} is over the limit of 10 years; write a shorter one")
    return seconds


def format_seconds(seconds: float) -> str:
    """``600.0`` -> ``"600"``; keeps fractions only where there are some (seed 003's messages)."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
