"""A job's ``artifacts:`` — files collected from its workspace when it ends (GitLab's keyword).

``artifacts: {paths: [globs], expire_in: 7d}`` (or just a list of globs). Globs are relative to
the job's workspace, may use ``*``, ``?``, ``[...]`` and ``**`` (any depth), and must stay inside
it: an absolute path or a ``..`` segment is refused here, when the document is loaded, and a
symlink leading out is refused when the files are collected. ``expire_in`` is a duration (default
30 days, GitLab's default); ``never`` keeps them until the run is deleted.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worldtree.model.durations import parse_duration

#: GitLab's default expiry of job artifacts.
DEFAULT_EXPIRE_SECONDS = 30 * 86400.0


class ArtifactRule(BaseModel):
    """The job-level data the compiler puts on a job's scope (and agents receive with the job)."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(min_length=1)
    #: seconds after collection; None: never expires
    expire_in: float | None = DEFAULT_EXPIRE_SECONDS
    #: collect when the job succeeded (GitLab's default), failed, or either
    when: Literal["on_success", "on_failure", "always"] = "on_success"

    @model_validator(mode="before")
    @classmethod
    def _list_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list | str):
            return {"paths": value}
        return value

    @field_validator("paths", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        value = [value] if isinstance(value, str) else value
        if isinstance(value, list):
            for glob in value:
                if isinstance(glob, str):
                    check_glob(glob)
        return value

    @field_validator("expire_in", mode="before")
    @classmethod
    def _expire(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() == "never"):
            return None
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("expire_in must be a positive duration (7d, 12h) or `never`")
        return seconds


def check_glob(glob: str) -> None:
    """ValueError (a diagnostic's text) for a glob that could name files outside the workspace."""
    text = glob.strip()
    if not text or "\x00" in text:
        raise ValueError(f"artifact path {glob!r} is empty; give a path or glob relative to the workspace")
    if text.startswith(("/", "\\")) or (len(text) > 1 and text[1] == ":"):
        raise ValueError(f"artifact path {glob!r} is absolute; artifacts come from the job's workspace: "
                         "write it relative to the workspace")
    if ".." in text.replace("\\", "/").split("/"):
        raise ValueError(f"artifact path {glob!r} leaves the workspace (`..`); write it relative to the "
                         "workspace, without `..`")
