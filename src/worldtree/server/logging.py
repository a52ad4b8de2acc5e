"""The server's own log: structlog, one JSON object per line on stderr (or readable lines on a terminal).

Every record goes through one handler — worldtree's loggers, uvicorn's error and access logs,
libraries' — and gets ``ts`` (UTC, ISO 8601), ``level``, ``logger`` and ``event``. Context bound
with :func:`structlog.contextvars.bind_contextvars` joins every line of its thread or task: an
executor binds ``run_id``, ``attempt`` and ``executor`` around a run, and node lines (the executor
logs each committed node state change) carry ``node`` too. Access lines carry ``client``,
``method``, ``path``, ``status``.

``--log-format json`` (the default when stderr is not a terminal: under systemd, in a container)
or ``console`` (the default on a terminal). The server never logs a request body, a header or a
step's output, so secrets stay out; a path never holds one (tokens travel in headers).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

FORMATS = ("json", "console")
LEVELS = ("debug", "info", "warning", "error")


def default_format() -> str:
    """``console`` on a terminal, else ``json``."""
    return "console" if sys.stderr.isatty() else "json"


_ACCESS = re.compile(r'^(?P<client>\S+) - "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})$')


def _access_fields(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """uvicorn's access line ``'client - "GET /path HTTP/1.1" 200'`` also as fields."""
    event.pop("color_message", None)  # uvicorn's copy of the message with terminal colors
    if event.get("logger") == "uvicorn.access" and isinstance(event.get("event"), str):
        found = _ACCESS.match(event["event"])
        if found:
            event.update(client=found["client"], method=found["method"], path=found["path"],
                         status=int(found["status"]))
    return event


def _shared() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        structlog.stdlib.ExtraAdder(),
        _access_fields,
    ]


def log_config(fmt: str, level: str = "info") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` (also uvicorn's ``log_config``) routing every record to stderr."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    formatter = {
        "()": structlog.stdlib.ProcessorFormatter,
        "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                       structlog.processors.format_exc_info, renderer],
        "foreign_pre_chain": _shared(),
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"worldtree": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "worldtree",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True, "level": level.upper()}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def configure(fmt: str, level: str = "info") -> dict[str, Any]:
    """Route stdlib logging and structlog through one renderer; returns the config for uvicorn."""
    import logging.config

    config = log_config(fmt, level)
    logging.config.dictConfig(config)
    structlog.configure(
        processors=[*_shared()[:-2], structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return config


def run_context(**fields: Any) -> Any:
    """``with run_context(run_id=..., executor=...):`` — every line of this thread carries the fields."""
    return structlog.contextvars.bound_contextvars(**fields)


def banner(message: str, **fields: Any) -> None:
    """The start-up line: one JSON object like every other line (or plain text on a terminal)."""
    logging.getLogger("worldtree.server").info(message, extra=fields)
