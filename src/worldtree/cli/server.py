"""``worldtree server``: the REST API and the executors in one process (a laptop needs nothing else)."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from worldtree.store.api import RunStore

server_app = typer.Typer(help="Serve the REST API and run queued pipelines.", invoke_without_command=True,
                         no_args_is_help=False)


@server_app.callback()
def serve(
    ctx: typer.Context,
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
    poll_seconds: Annotated[float, typer.Option(
        "--poll-seconds", envvar="WORLDTREE_POLL_SECONDS", min=0.05,
        help="How often idle executors look at the queue (on PostgreSQL a submit also wakes them).")] = 0.5,
    drain_seconds: Annotated[float, typer.Option(
        "--drain-seconds", envvar="WORLDTREE_DRAIN_SECONDS", min=0.0,
        help="On SIGTERM/Ctrl-C, how long runs under way may take to end; the rest are taken over later.")] = 25.0,
    config_file: Annotated[str | None, typer.Option(
        "--config", envvar="WORLDTREE_CONFIG",
        help="YAML file with the same keys as these flags (data_dir: ..., port: ...); flags and "
             "WORLDTREE_* variables win over it.")] = None,
    tls_cert: Annotated[str | None, typer.Option("--tls-cert", envvar="WORLDTREE_TLS_CERT",
                                                 help="PEM certificate (chain): serve HTTPS and wss://.")] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", envvar="WORLDTREE_TLS_KEY",
                                                help="PEM private key of --tls-cert.")] = None,
    log_format: Annotated[str | None, typer.Option(
        "--log-format", envvar="WORLDTREE_LOG_FORMAT",
        help="json (one object per line on stderr) or console. Default: console on a terminal, else json.")] = None,
    log_level: Annotated[str, typer.Option("--log-level", envvar="WORLDTREE_LOG_LEVEL",
                                           help="debug, info, warning or error.")] = "info",
    max_concurrent: Annotated[int | None, typer.Option(
        "--max-concurrent", envvar="WORLDTREE_MAX_CONCURRENT", min=1,
        help="Queued runs running at once across every replica (checked in the store when a run is claimed; "
             "give every replica the same). Default: no limit but each replica's --executors.")] = None,
    events: Annotated[str | None, typer.Option(
        "--events", envvar="WORLDTREE_EVENTS",
        help="GitOps: put webhook deliveries on NATS JetStream (nats://HOST:PORT[?stream=NAME]); "
             "default: the store is the queue.")] = None,
    public_url: Annotated[str | None, typer.Option(
        "--public-url", envvar="WORLDTREE_PUBLIC_URL",
        help="GitOps: this server's URL as users reach it (commit statuses link to its console).")] = None,
    auth: Annotated[bool | None, typer.Option(
        "--auth/--no-auth", envvar="WORLDTREE_AUTH",
        help="Require API tokens (`worldtree token create`). Default: on, except on a loopback address; "
             "--no-auth is refused on any other address.")] = None,
    grpc_port: Annotated[int | None, typer.Option(
        "--grpc-port", envvar="WORLDTREE_GRPC_PORT", min=-1, max=65535,
        help="gRPC port for agents and JobService (0 picks a free one and prints it; -1: no gRPC). "
             "Default 9090; when it is taken the server runs without gRPC and says so.")] = None,
    grpc_tls_cert: Annotated[str | None, typer.Option("--grpc-tls-cert", envvar="WORLDTREE_GRPC_TLS_CERT",
                                                      help="PEM certificate: serve gRPC over TLS.")] = None,
    grpc_tls_key: Annotated[str | None, typer.Option("--grpc-tls-key", envvar="WORLDTREE_GRPC_TLS_KEY",
                                                     help="PEM private key of --grpc-tls-cert.")] = None,
    jobs_on: Annotated[str, typer.Option(
        "--jobs-on", envvar="WORLDTREE_JOBS_ON",
        help="auto: jobs with a label selector run on agents, others in-process; agents: every job.")] = "auto",
) -> None:
    """Serve ``/api/v1`` on HOST:PORT and run queued pipelines with N executors."""
    from worldtree.cli.main import _guard

    if config_file is not None:  # the file fills in what no flag or variable set, then serve as if typed
        from worldtree.cli.server_config import merged

        values = _guard(lambda: merged(ctx, config_file))
        serve(**{**values, "ctx": ctx, "config_file": None})
        return
    fmt = log_format or _default_log_format()
    if fmt not in ("json", "console") or log_level not in ("debug", "info", "warning", "error"):
        typer.echo(f"error: --log-format {fmt} --log-level {log_level}: expected json|console and "
                   "debug|info|warning|error", err=True)
        raise typer.Exit(2)
    ssl_files = _tls(tls_cert, tls_key)
    if auth is None:
        auth = not _loopback(host)
    if not auth and not _loopback(host):
        typer.echo(f"error: --no-auth on {host}: anyone who reaches that address could run commands as this "
                   "user; it is allowed only on a loopback address (127.0.0.1, ::1)", err=True)
        raise typer.Exit(2)
    data = os.path.abspath(data_dir)
    os.makedirs(data, exist_ok=True)
    url = store or f"sqlite:///{os.path.join(data, 'worldtree.db')}"
    _guard(lambda: _check_store(url))
    if events:  # an unreachable NATS is a one-line error here, not a traceback at start-up
        from worldtree.gitops.nats_queue import check_reachable

        _guard(lambda: check_reachable(events))
    from worldtree.app.secrets_store import check_server_key

    _guard(lambda: check_server_key(url, data))  # a key that cannot read the stored secrets: refuse to start

    import uvicorn

    from worldtree.server.app import ServerSettings, create_app

    app = create_app(ServerSettings(store_url=url, data_dir=data, executors=executors, lease_seconds=lease_seconds,
                                    auth=auth, drain_seconds=drain_seconds, events_url=events, public_url=public_url,
                                    poll_seconds=poll_seconds, max_concurrent=max_concurrent,
                                    **_grpc_settings(host, grpc_port, grpc_tls_cert, grpc_tls_key, jobs_on)))
    sock = _listen(host, port)  # bound before anything is printed: a busy port is a clear error
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    from worldtree.server.logging import banner, configure

    configure(fmt, log_level)
    scheme = "https" if ssl_files else "http"
    banner(f"worldtree server on {scheme}://{shown}:{bound}/ (console /console, API /api/v1, docs /docs; store "
           f"{_display(url)}; {executors} executor(s); {'tokens required' if auth else 'no authentication'})",
           url=f"{scheme}://{shown}:{bound}/", executors=executors, max_concurrent=max_concurrent)
    config = uvicorn.Config(app, log_config=None, log_level=log_level, access_log=True, lifespan="on",
                            ssl_certfile=ssl_files[0] if ssl_files else None,
                            ssl_keyfile=ssl_files[1] if ssl_files else None)
    uvicorn.Server(config).run(sockets=[sock])


def _default_log_format() -> str:
    from worldtree.server.logging import default_format

    return default_format()


def _tls(cert: str | None, key: str | None) -> tuple[str, str] | None:
    """The certificate and key files, checked (they load together) before anything starts; exit 2 if not."""
    if not cert and not key:
        return None
    if not cert or not key:
        typer.echo("error: --tls-cert and --tls-key go together; give both for HTTPS", err=True)
        raise typer.Exit(2)
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        typer.echo(f"error: --tls-cert {cert} --tls-key {key}: {getattr(exc, 'strerror', None) or exc}; "
                   "give a PEM certificate and its private key", err=True)
        raise typer.Exit(2) from None
    return os.path.abspath(cert), os.path.abspath(key)


def _grpc_settings(host: str, port: int | None, cert: str | None, key: str | None, jobs_on: str) -> dict[str, Any]:
    """ServerSettings' gRPC fields; ``--jobs-on`` reaches the executors through WORLDTREE_JOBS_ON."""
    if jobs_on not in ("auto", "agents"):
        typer.echo(f"error: --jobs-on {jobs_on}: expected auto or agents", err=True)
        raise typer.Exit(2)
    if bool(cert) != bool(key):
        typer.echo("error: --grpc-tls-cert and --grpc-tls-key go together; give both for TLS", err=True)
        raise typer.Exit(2)
    os.environ["WORLDTREE_JOBS_ON"] = jobs_on
    if port == -1:
        return {"grpc_port": None}
    return {"grpc_port": 9090 if port is None else port, "grpc_optional": port is None, "grpc_host": host,
            "grpc_tls_cert": cert, "grpc_tls_key": key}


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket (``--port 0`` picks a free port); exit 1 with a message when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror}; pick another --port or --host", err=True)
        raise typer.Exit(1) from None
    sock.set_inheritable(False)
    return sock


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


token_app = typer.Typer(help="API tokens of the server: create, list, revoke (written to the store).",
                        no_args_is_help=True)
TokenStoreOpt = Annotated[str | None, typer.Option("--store", envvar="WORLDTREE_STORE",
                                                   help="Run store URL (default: SQLite in --data-dir).")]
DataDirOpt = Annotated[str, typer.Option("--data-dir", envvar="WORLDTREE_DATA_DIR")]


def _token_store(store: str | None, data_dir: str) -> RunStore:
    """The server's store: ``--store``, else the SQLite file in the data dir ``worldtree server`` uses."""
    from worldtree.store import open_store

    if store is None:
        os.makedirs(os.path.abspath(data_dir), exist_ok=True)
    return open_store(store or f"sqlite:///{os.path.join(os.path.abspath(data_dir), 'worldtree.db')}")


@token_app.command("create")
def token_create(role: Annotated[str, typer.Option("--role", help="viewer, maintainer or admin.")],
                 name: Annotated[str | None, typer.Option("--name")] = None,
                 expires: Annotated[str | None, typer.Option("--expires", help="e.g. 30d, 12h.")] = None,
                 store: TokenStoreOpt = None, data_dir: DataDirOpt = ".worldtree") -> None:
    """Create a token and print it once on stdout (only its hash is stored)."""
    from worldtree.app import tokens
    from worldtree.cli.main import _guard

    described, token = _guard(lambda: tokens.create(_token_store(store, data_dir), role,
                                                    name=name, expires=expires))
    typer.echo(f"created {described['id']} ({described['role']}); the token is shown only now:", err=True)
    typer.echo(token)


@token_app.command("list")
def token_list(store: TokenStoreOpt = None, data_dir: DataDirOpt = ".worldtree") -> None:
    """List tokens (never the tokens themselves)."""
    from worldtree.app import tokens
    from worldtree.cli.main import _guard

    for item in _guard(lambda: tokens.list_tokens(_token_store(store, data_dir))):
        state = "revoked" if item["revoked_at"] else f"expires {item['expires_at']}" if item["expires_at"] else ""
        typer.echo(f"{item['id']}  {item['role']:<10} {item['name']}  {state}".rstrip())


@token_app.command("revoke")
def token_revoke(token_id: str, store: TokenStoreOpt = None, data_dir: DataDirOpt = ".worldtree") -> None:
    """Revoke a token; every replica refuses it from its next call."""
    from worldtree.app import tokens
    from worldtree.cli.main import _guard

    _guard(lambda: tokens.revoke(_token_store(store, data_dir), token_id))
    typer.echo(f"revoked {token_id}", err=True)
