"""Where a job may run: its label selector (nearest level wins) and an ``idp://`` step's server.

Kept out of ``compiler.py`` so routing has one home: the compiler asks this module what to put
on each node, and ``app.explain`` reads what it put there.
"""

from __future__ import annotations

from typing import Any

from worldtree.model.idp import split_idp_url
from worldtree.model.labels import LabelSelector
from worldtree.model.spec import SelectorFields

__all__ = ["idp_target_fields", "node_selector"]


def node_selector(*levels: SelectorFields | None) -> LabelSelector | None:
    """The selector of the innermost level that sets one (job -> stage -> pipeline), whole: a job's
    ``label_selector`` replaces its stage's rather than adding to it, as every inherited field
    does. An empty selector (``labels: {}``) clears an inherited one: the node gets none, and runs as
    a job without a selector does (the server's executors, or any agent with ``--jobs-on agents``)."""
    for level in levels:
        if level is not None and level.selector is not None:
            return None if level.selector.is_empty() else level.selector
    return None


def idp_target_fields(engine: str | None) -> dict[str, Any]:
    """``server`` and ``tls`` of a compiled ``idp``/``idps`` target; ``{}`` for any other engine.

    The loader has already refused a URL that does not parse, so a failure here means the caller
    skipped the loader: it is left to the runtime to report."""
    if not engine or not engine.startswith(("idp://", "idps://")):
        return {}
    try:
        parts = split_idp_url(engine)
    except ValueError:
        return {}
    return {"server": parts.server, "tls": parts.tls}
