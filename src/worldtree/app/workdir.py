"""The run's working directory (seed 003 §11): the current directory unless one is given.

A given directory is created when missing and removed after the run — but only when worldtree
created it. The seed removes any workdir that is not the current directory; deleting a
directory the user already had (``workdir: /home/me/project``) would destroy their files, so
we do better than the seed here.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass
class Workdir:
    path: str
    created: bool
    #: The outermost directory worldtree had to create for ``path`` (``a`` for a missing ``a/b``).
    top: str | None = None

    def cleanup(self) -> None:
        if self.created and os.path.realpath(self.path) != os.path.realpath(os.getcwd()):
            shutil.rmtree(self.top or self.path, ignore_errors=True)


def prepare_workdir(requested: str | None) -> Workdir:
    path = os.path.abspath(requested) if requested else os.getcwd()
    created = not os.path.exists(path)
    top = path
    while created and not os.path.exists(os.path.dirname(top)):
        top = os.path.dirname(top)
    os.makedirs(path, exist_ok=True)
    return Workdir(path, created, top if created else None)
