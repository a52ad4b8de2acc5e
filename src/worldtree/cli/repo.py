"""``worldtree repo add|list|remove``: the repositories whose webhooks the server acts on.

Written straight to the server's store (``--store``, else the SQLite file in ``--data-dir``), like
``worldtree token``. Secrets are read from environment variables named on the command line
(never from arguments, which other users can see in ``ps``) and stored encrypted with the
server's key (``$WORLDTREE_SECRET_KEY`` or ``<data dir>/secret.key``: run this with the server's
data dir, or the same key in the environment).
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from worldtree.cli.server import DataDirOpt, TokenStoreOpt, _token_store

repo_app = typer.Typer(help="Repositories whose webhooks start runs: add, list, remove.", no_args_is_help=True)


def _secret(env_name: str | None, option: str) -> str | None:
    from worldtree.errors import UsageError

    if env_name is None:
        return None
    value = os.environ.get(env_name, "")
    if not value:
        raise UsageError(f"{option} {env_name}: that environment variable is not set or empty; "
                         f"export {env_name}=... first")
    return value


@repo_app.command("add")
def repo_add(
    name: Annotated[str, typer.Argument(help="OWNER/NAME (GitLab: the project's path).")],
    provider: Annotated[str, typer.Option("--provider", help="github, gitlab or gitea.")],
    clone_url: Annotated[str, typer.Option("--clone-url", help="What `git clone` takes.")],
    webhook_secret_env: Annotated[str, typer.Option("--webhook-secret-env",
                                                    help="Environment variable holding the webhook secret.")],
    status_token_env: Annotated[str | None, typer.Option(
        "--status-token-env", help="Environment variable holding a token for commit statuses.")] = None,
    api_url: Annotated[str | None, typer.Option("--api-url", help="Status API base URL (self-hosted).")] = None,
    ci_file: Annotated[str | None, typer.Option("--ci-file", help="Pipeline file (default ci.yaml, "
                                                                  "then .worldtree.yaml).")] = None,
    executor: Annotated[str, typer.Option("--executor", help="local, agents or argo.")] = "local",
    store: TokenStoreOpt = None, data_dir: DataDirOpt = ".worldtree",
) -> None:
    """Register a repository; point its webhook at POST /api/v1/webhooks/<provider>."""
    from worldtree.cli.main import _guard
    from worldtree.gitops import repos

    def add() -> dict[str, object]:
        secret = _secret(webhook_secret_env, "--webhook-secret-env") or ""
        token = _secret(status_token_env, "--status-token-env")
        return repos.add(_token_store(store, data_dir), repos.cipher(data_dir), name=name, provider=provider,
                         clone_url=clone_url, webhook_secret=secret, status_token=token, api_url=api_url,
                         ci_file=ci_file, executor=executor)

    described = _guard(add)
    typer.echo(f"registered {described['name']} ({described['provider']}, id {described['id']}); webhook URL: "
               f"<server>/api/v1/webhooks/{described['provider']}", err=True)


@repo_app.command("list")
def repo_list(as_json: Annotated[bool, typer.Option("--json")] = False, store: TokenStoreOpt = None,
              data_dir: DataDirOpt = ".worldtree") -> None:
    """Registered repositories (never their secrets)."""
    from worldtree.cli.main import _guard
    from worldtree.gitops import repos

    items = _guard(lambda: repos.list_repos(_token_store(store, data_dir)))
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    for item in items:
        token = "status token" if item["status_token"] else "no status token"
        typer.echo(f"{item['id']}  {item['provider']:<7} {item['name']}  {item['clone_url']}  "
                   f"{item['executor']}  {token}")


@repo_app.command("remove")
def repo_remove(name: Annotated[str, typer.Argument(help="OWNER/NAME or the repository's id.")],
                provider: Annotated[str | None, typer.Option("--provider")] = None,
                store: TokenStoreOpt = None, data_dir: DataDirOpt = ".worldtree") -> None:
    """Forget a repository, its deliveries and its schedules."""
    from worldtree.cli.main import _guard
    from worldtree.gitops import repos

    _guard(lambda: repos.remove(_token_store(store, data_dir), name, provider))
    typer.echo(f"removed {name}", err=True)
