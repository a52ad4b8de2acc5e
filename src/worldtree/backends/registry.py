"""Which backend runs which target kind. Imports are lazy: a run of host steps never pays for
importing the Docker or SSH client libraries."""

from __future__ import annotations

import importlib

from worldtree.backends.base import Backend, RunContext
from worldtree.errors import BackendUnavailable

#: target kind -> "module:factory". A factory takes a RunContext and returns a Backend.
BACKENDS: dict[str, str] = {
    "host": "worldtree.backends.host:HostBackend",
    "docker": "worldtree.backends.docker.backend:DockerBackend",
    "ssh": "worldtree.backends.ssh.backend:SshBackend",
    "idp": "worldtree.backends.idp:IdpBackend",
}

#: kinds the document may name that no backend runs yet, with the issue that brings them
NOT_YET: dict[str, str] = {}


def create_backend(kind: str, ctx: RunContext) -> Backend:
    """Instantiate the backend for ``kind``; BackendUnavailable with a clear reason otherwise."""
    if kind in NOT_YET:
        raise BackendUnavailable(f"engine {kind!r}: {NOT_YET[kind]}")
    spec = BACKENDS.get(kind)
    if spec is None:
        raise BackendUnavailable(f"unknown engine {kind!r}; use host, docker (or an `image`), or ssh://…")
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise BackendUnavailable(
            f"engine {kind!r} is not available yet in this install ({exc.name} is missing)") from None
    factory = getattr(module, attr)
    backend: Backend = factory(ctx)
    return backend
