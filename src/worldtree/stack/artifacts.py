"""Files a stack command leaves behind: ``stackflow.*.json``, the applied state, the summary.

All writes go through a temporary file and ``os.replace`` so a reader (CI uploading artifacts,
a concurrent ``plan``) never sees half a file. The summary is also appended to
``$GITHUB_STEP_SUMMARY`` when set, as the reference runner does for its step summary.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from worldtree.errors import SpecError, UsageError

STATE_FILE = "stackflow.state.json"
SUMMARY_FILE = "stackflow.summary.md"


def validate_path(out: Path) -> Path:
    return out / "stackflow.validate.json"


def plan_path(out: Path, phase: str) -> Path:
    return out / f"stackflow.{phase}-plan.json"


def apply_path(out: Path, phase: str) -> Path:
    return out / f"stackflow.{phase}-apply.json"


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}; choose another --out directory") from None


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no {what} here; run `worldtree stack plan` with --out pointing at it") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        from worldtree.compile.diagnostics import Diagnostic

        raise SpecError([Diagnostic("error", "json", f"{what} is not readable JSON: {exc}; run plan again",
                                    str(path))]) from None


def read_state(out: Path) -> dict[str, Any]:
    """What earlier applies recorded in ``out`` (empty before the first apply)."""
    path = out / STATE_FILE
    if not path.exists():
        return {}
    data = read_json(path, "applied state")
    return data if isinstance(data, dict) else {}


def append_step_summary(markdown: str) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY", "").strip()
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as exc:
        raise UsageError(f"GITHUB_STEP_SUMMARY={target}: cannot append: {exc.strerror or exc}") from None
