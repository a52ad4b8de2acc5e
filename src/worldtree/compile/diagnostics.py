"""Compile errors are data: every problem is collected as a Diagnostic, not raised one by one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """``file:line:col: severity: message`` — line and column count from 1, as editors do."""

    severity: Severity
    code: str
    message: str
    file: str
    line: int = 1
    col: int = 1

    def render(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"severity": self.severity, "code": self.code, "message": self.message,
                "file": self.file, "line": self.line, "col": self.col}
