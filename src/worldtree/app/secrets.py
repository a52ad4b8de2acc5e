"""Secret values for a local run: from ``--secrets-file`` (dotenv format) or the environment.

Values live only in memory for the run: never in the store, the plan or an error message.
"""

from __future__ import annotations

import os
from pathlib import Path

from worldtree.errors import UsageError
from worldtree.model.graph import ExecutionGraph


def secret_names(graph: ExecutionGraph) -> list[str]:
    return sorted({name for node in graph.nodes for name in node.secrets})


def load_secrets(names: list[str], secrets_file: str | None = None) -> dict[str, str]:
    """The values that can be found; a missing one fails its job when the job is about to start."""
    from_file: dict[str, str] = {}
    if secrets_file:
        path = Path(secrets_file)
        if not path.is_file():
            raise UsageError(f"{secrets_file}: no such secrets file; pass a dotenv file (NAME=value lines)")
        from dotenv import dotenv_values

        from_file = {k: v for k, v in dotenv_values(path).items() if v is not None}
    values: dict[str, str] = {}
    for name in names:
        if name in from_file:
            values[name] = from_file[name]
        elif name in os.environ:
            values[name] = os.environ[name]
    return values


def literal_credentials(graph: ExecutionGraph) -> list[str]:
    """Passwords and keys written literally in the file (``engine:`` URLs,
    ``image_registry_password``): masked like secrets.

    Such a run's stored graph keeps them masked, so ``worldtree retry`` cannot use them; the
    loader warns to write ``${NAME}`` and list NAME in ``secrets:`` instead.
    """
    values = sorted({n.target.image_registry_password for n in graph.nodes
                     if n.target.image_registry_password and "${" not in n.target.image_registry_password})
    engines = {n.target.engine for n in graph.nodes if n.target.engine and "://" in n.target.engine}
    if engines:
        from worldtree.connectors.ssh.target import literal_credentials as from_url
        from worldtree.model.idp import literal_idp_credentials

        values += [value for url in sorted(engines) for value in from_url(url)]
        values += [value for url in sorted(engines) for value in literal_idp_credentials(url)]
    return values
