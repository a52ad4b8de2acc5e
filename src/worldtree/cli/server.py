"""``worldtree server``: the REST API and the executors in one process (a laptop needs nothing else)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

server_app = typer.Typer(help="Serve the REST API and run queued pipelines.", invoke_without_command=True,
                         no_args_is_help=False)


@server_app.callback()
def serve(
    host: Annotated[str, typer.Option("--host", envvar="WORLDTREE_HOST", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="WORLDTREE_PORT", min=0, max=65535,
                                      help="TCP port.")] = 8080,
    store: Annotated[str | None, typer.Option("--store", envvar="WORLDTREE_STORE",
                                              help="Run store URL (default: SQLite in the data dir).")] = None,
    data_dir: Annotated[str, typer.Option("--data-dir", envvar="WORLDTREE_DATA_DIR",
                                          help="Where the SQLite store and run workspaces live.")] = ".worldtree",
    executors: Annotated[int, typer.Option("--executors", envvar="WORLDTREE_EXECUTORS", min=0,
                                           help="Runs executed at once by this process.")] = 2,
    lease_seconds: Annotated[float, typer.Option("--lease-seconds", envvar="WORLDTREE_LEASE_SECONDS", min=2.0,
                                                 help="How long a run's claim holds without a heartbeat.")] = 30.0,
    insecure_no_auth: Annotated[bool, typer.Option(
        "--insecure-no-auth", envvar="WORLDTREE_INSECURE_NO_AUTH",
        help="Serve a non-loopback address although the API has no authentication yet.")] = False,
) -> None:
    """Serve ``/api/v1`` on HOST:PORT and run queued pipelines with N executors."""
    from worldtree.cli.main import _guard

    if not _loopback(host) and not insecure_no_auth:
        typer.echo(f"error: --host {host} is not a loopback address, and the API has no authentication yet: "
                   "anyone who reaches it can run commands as this user; bind 127.0.0.1 (put an authenticating "
                   "proxy in front), or pass --insecure-no-auth if the network is yours alone", err=True)
        raise typer.Exit(2)
    data = os.path.abspath(data_dir)
    os.makedirs(data, exist_ok=True)
    url = store or f"sqlite:///{os.path.join(data, 'worldtree.db')}"
    _guard(lambda: _check_store(url))

    import uvicorn

    from worldtree.server.app import ServerSettings, create_app

    app = create_app(ServerSettings(store_url=url, data_dir=data, executors=executors, lease_seconds=lease_seconds))
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"worldtree server on http://{shown}:{port}/ (API /api/v1, docs /docs; store {_display(url)}; "
               f"{executors} executor(s))", err=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        typer.echo(f"error: could not serve on {host}:{port} (is the port in use?); pick another with --port",
                   err=True)
        raise typer.Exit(1)


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_store(url: str) -> None:
    """Open (and migrate) the store once before serving: a bad URL is an error, not a traceback."""
    from worldtree.store import open_store

    open_store(url).close()


def _display(url: str) -> str:
    from worldtree.store.schema import display_url

    return display_url(url)
