"""The run's working directory (seed 003 §11): the current directory unless one is given.

A given directory is created when missing. worldtree removes it again only when all of these hold:

* worldtree created it (deleting ``workdir: /home/me/project`` would destroy the user's files;
  the seed removes any workdir that is not the current directory, we do better);
* the run succeeded. A failed, cancelled or interrupted run keeps it, as the seed 003 tool does,
  so ``worldtree retry`` finds the files the reused steps made (the CLI says where it is);
* no other run is using it. Every run holds a shared ``flock`` on the directory itself while it
  works; removal needs the exclusive lock, so the first of two runs sharing a workdir never
  pulls it from under the second. The lock is on the directory itself: no lock file. A
  directory worldtree created holds one small marker, ``.worldtree-workdir``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from dataclasses import dataclass

from worldtree.errors import UsageError

#: Written into a workdir worldtree creates: a random token the run records, so a retry knows the
#: directory is still the one it made (inode numbers are reused too quickly to tell).
MARKER = ".worldtree-workdir"


@dataclass
class Workdir:
    path: str
    created: bool
    #: The outermost directory worldtree had to create for ``path`` (``a`` for a missing ``a/b``).
    top: str | None = None
    _fd: int | None = None

    @property
    def identity(self) -> str | None:
        """The token in :data:`MARKER`: tells the directory we made from a later one at the same path."""
        return _identity(self.path) if self.created else None

    def release(self, *, remove: bool) -> bool:
        """Drop this run's hold; remove the directory when ``remove`` and nobody else holds it.

        Returns whether it was removed. Idempotent.
        """
        fd, self._fd = self._fd, None
        if fd is None:
            return False
        try:
            if not (remove and self.created) or os.path.realpath(self.path) == os.path.realpath(os.getcwd()):
                return False
            try:  # upgrade to exclusive: fails while another run holds its shared lock
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
            shutil.rmtree(self.top or self.path, ignore_errors=True)
            return True
        finally:
            os.close(fd)


def prepare_workdir(requested: str | None, *, created_as: str | None = None) -> Workdir:
    """Create (if needed) and hold the workdir.

    ``created_as``: the :attr:`Workdir.identity` an earlier attempt recorded when it created the
    directory. It counts as ours only if it is still that very directory: one the user made at the
    same path after ours was gone is theirs, and is never removed.
    A path that exists and is not a directory is a usage error (exit 2), not an internal one.
    """
    path = os.path.abspath(requested) if requested else os.getcwd()
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"workdir {path} exists and is not a directory; pass a directory to --workdir "
                         "(or `workdir:` in the file)")
    created = not os.path.exists(path)
    top = path
    while created and not os.path.exists(os.path.dirname(top)):
        top = os.path.dirname(top)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create workdir {path}: {exc.strerror}; pick a directory you can write to") from None
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_SH)
    if created:
        identity = secrets.token_hex(8)
        with contextlib.suppress(OSError), open(os.path.join(path, MARKER), "w") as marker:
            marker.write(identity + "\n")
    ours = created or (created_as is not None and _identity(path) == created_as)
    return Workdir(path, ours, top if created else None, fd)


def _identity(path: str) -> str | None:
    try:
        with open(os.path.join(path, MARKER)) as marker:
            return marker.read().strip() or None
    except OSError:
        return None
