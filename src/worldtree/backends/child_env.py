"""Which of worldtree's own environment a host step inherits.

A shell passes its whole environment to the commands it runs, and so does the host backend,
with one exception: worldtree's own variables (``WORLDTREE_*``) configure *this* process.
``WORLDTREE_STORE`` may hold a database password, and none of them means anything to a step.
The engine injects the three a step may rely on (``WORLDTREE_RUN_ID``, ``WORLDTREE_ATTEMPT``,
``WORLDTREE_NODE``) through the step request's ``env``, which is laid over what this module
returns and never filtered.

Policies (``RunContext.inherit_env``):

* ``"all"`` (local CLI runs): everything but ``WORLDTREE_*``, as a shell would.
* ``"allowlist"`` (server and agent executors, whose environment belongs to a service, not to
  the user who wrote the document): only :data:`ALLOWLIST` and ``LC_*``; the document declares
  anything else it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

InheritEnv = Literal["all", "allowlist"]

#: Variables a step expects from any login: the search path, who and where it is, its locale.
ALLOWLIST = frozenset({"PATH", "HOME", "LANG", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR", "TERM"})
_OWN_PREFIX = "WORLDTREE_"


def inherited(environ: Mapping[str, str], policy: InheritEnv) -> dict[str, str]:
    """The part of ``environ`` (worldtree's own environment) a host step starts from."""
    if policy == "allowlist":
        return {k: v for k, v in environ.items() if k in ALLOWLIST or k.startswith("LC_")}
    return {k: v for k, v in environ.items() if not k.startswith(_OWN_PREFIX)}
