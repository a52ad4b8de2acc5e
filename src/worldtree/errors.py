"""The one error tree of worldtree.

::

    WorldtreeError
    ├── SpecError (ValueError)          the user's document is wrong; carries Diagnostics
    ├── UsageError (ValueError)         the command line is wrong (unknown run id, bad --env)
    ├── SecretError (KeyError)          a named secret has no value
    ├── BackendError (RuntimeError)     worldtree or a backend broke (not: a step exited non-zero)
    │   ├── BackendUnavailable          the node needs a backend this install cannot run yet
    │   └── ConnectError (ConnectionError)  a remote target could not be reached
    ├── StoreError (RuntimeError)       the run store cannot be opened or written
    └── ConflictError                   a compare-and-set lost: another process changed the run first

Foreign exceptions (SQLAlchemy, asyncssh, docker) are translated at the boundary that calls
them, so callers only ever catch these. Only ``worldtree.cli`` renders them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worldtree.compile.diagnostics import Diagnostic


class WorldtreeError(Exception):
    """Root of every error worldtree raises on purpose."""

    exit_code: int = 1


class SpecError(WorldtreeError, ValueError):
    """The user's document cannot be loaded; ``diagnostics`` says where and why."""

    exit_code = 2

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.render() for d in diagnostics))


class UsageError(WorldtreeError, ValueError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


class SecretError(WorldtreeError, KeyError):
    """A secret named by a job has no value; the message names it, never a value."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BackendError(WorldtreeError, RuntimeError):
    """Worldtree or a backend broke while running a node (an *error*, not a *failure*)."""


class BackendUnavailable(BackendError):
    """The node needs a backend this install cannot run (yet)."""


class ConnectError(BackendError, ConnectionError):
    """A remote target (SSH host, container engine) could not be reached."""


class StoreError(WorldtreeError, RuntimeError):
    """The run store cannot be opened, migrated or written."""


class ConflictError(WorldtreeError):
    """A compare-and-set in the store lost: another process retried, finished, fenced or changed
    the run (or node) first. The message says what happened and what to do."""
