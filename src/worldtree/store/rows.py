"""Values as the store binds and reads them, without SQLAlchemy (the direct SQLite path imports none)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utc_param(value: datetime | None, as_text: bool) -> Any:
    """``value`` as the driver wants it (UTC text for SQLite); the writer calls it directly."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps timezone-aware UTC")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6] if as_text else value  # [:-6] drops +00:00


def utc_value(value: Any) -> datetime | None:
    """A time as read back by either driver (SQLite text, PostgreSQL timestamptz) → aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def clean(text: str) -> str:
    """Text every database takes: no NUL (PostgreSQL refuses it), no lone surrogates (not UTF-8)."""
    if text.isascii():
        return text.replace("\x00", "\ufffd") if "\x00" in text else text
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
