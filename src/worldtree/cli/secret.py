"""``worldtree secret set|list|delete``: the server's secrets, written straight to its store.

Like ``worldtree token``: ``--store`` (else the SQLite file in ``--data-dir``), encrypted with the
server's key (``$WORLDTREE_SECRET_KEY`` or ``<data dir>/secret.key``: run it with the server's data
dir, or the same key in the environment). The value comes from stdin or a named environment
variable, never from an argument (other users can read arguments in ``ps``).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from worldtree.cli.server import DataDirOpt, TokenStoreOpt, _token_store

secret_app = typer.Typer(help="The server's secrets (encrypted at rest): set, list, delete.", no_args_is_help=True)


@secret_app.command("set")
def secret_set(name: Annotated[str, typer.Argument(help="The name steps see it under (an env var name).")],
               from_env: Annotated[str | None, typer.Option(
                   "--from-env", help="Read the value from this environment variable (default: stdin).")] = None,
               store: TokenStoreOpt = None, data_dir: DataDirOpt = ".worldtree") -> None:
    """Create or replace a secret; its value is read from stdin (one trailing newline dropped) or --from-env."""
    from worldtree.app import secrets_store
    from worldtree.cli.main import _guard
    from worldtree.errors import UsageError

    def put() -> dict[str, object]:
        if from_env is not None:
            value = os.environ.get(from_env, "")
            if not value:
                raise UsageError(f"--from-env {from_env}: that environment variable is not set or empty")
        else:
            value = sys.stdin.read().removesuffix("\n")
        return secrets_store.put(_token_store(store, data_dir), secrets_store.load_keys(data_dir), name, value)

    made = _guard(put)
    typer.echo(f"{'created' if made['created'] else 'replaced'} secret {made['name']}", err=True)


@secret_app.command("list")
def secret_list(store: TokenStoreOpt = None, data_dir: DataDirOpt = ".worldtree") -> None:
    """Secret names with their update times (never the values)."""
    from worldtree.app import secrets_store
    from worldtree.cli.main import _guard

    for item in _guard(lambda: secrets_store.list_secrets(_token_store(store, data_dir))):
        typer.echo(f"{item['name']}  updated {item['updated_at']}")


@secret_app.command("delete")
def secret_delete(name: str, store: TokenStoreOpt = None, data_dir: DataDirOpt = ".worldtree") -> None:
    """Delete a secret."""
    from worldtree.app import secrets_store
    from worldtree.cli.main import _guard

    _guard(lambda: secrets_store.delete(_token_store(store, data_dir), name))
    typer.echo(f"deleted secret {name}", err=True)
