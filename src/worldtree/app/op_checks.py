"""The ``op:`` step checker, installed lazily: the operation library loads only for ``op:`` steps.

``worldtree.ops.pipeline_step`` checks an ``op:`` step's operation and ``with:`` while the
document loads (a located error before anything runs), but importing it brings Jinja2, the
operations and the entry-point scan: about 0.1 s, more than a one-step ``worldtree run`` takes in
all. Importing this module installs a stand-in that imports the real checker on first use, so a
document without ``op:`` steps never pays for it.
"""

from __future__ import annotations

from typing import Any

from worldtree.compile.op_steps import Problem, set_op_checker


def _check_lazily(op: str, args: dict[str, Any]) -> list[Problem]:
    from worldtree.compile import op_steps
    from worldtree.ops import pipeline_step  # noqa: F401  (importing it installs the real checker)

    checker = op_steps.installed_checker()
    assert checker is not None and checker is not _check_lazily
    return checker(op, args)


set_op_checker(_check_lazily)
