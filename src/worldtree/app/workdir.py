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

    def cleanup(self) -> None:
        if self.created and os.path.realpath(self.path) != os.path.realpath(os.getcwd()):
            shutil.rmtree(self.path, ignore_errors=True)


def prepare_workdir(requested: str | None) -> Workdir:
    path = os.path.abspath(requested) if requested else os.getcwd()
    created = not os.path.exists(path)
    os.makedirs(path, exist_ok=True)
    return Workdir(path, created)
