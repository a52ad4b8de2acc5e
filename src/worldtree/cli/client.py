"""``worldtree client``: talk to a ``worldtree server`` (``--server URL`` or ``WORLDTREE_SERVER``).

``client run FILE`` submits the document, follows its log stream (reconnecting with
``Last-Event-ID`` if the connection drops, e.g. while a replica restarts) and exits like
``worldtree run``: 0 when the run succeeded, 1 otherwise, 2 when the document is refused (its
errors printed ``file:line:col: message``, as the local CLI prints them).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from worldtree.app.remote import RemoteRuns

T = TypeVar("T")

client_app = typer.Typer(help="Submit and follow runs on a worldtree server.", no_args_is_help=True)

ServerOpt = Annotated[str, typer.Option("--server", envvar="WORLDTREE_SERVER",
                                        help="The server's base URL, e.g. http://127.0.0.1:8080.")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="WORLDTREE_TOKEN",
                                              help="API token (`worldtree token create`), if the server needs one.")]
#: How long a follower keeps reconnecting to a server that went away (a restart, a replica's failover).
RECONNECT_SECONDS = 120.0
FINAL = ("succeeded", "failed", "cancelled", "timed_out", "error")


class ClientError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _fail(exc: ClientError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.code)


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _request(method: str, server: str, path: str, token: str | None, **kwargs: Any) -> Any:
    """A raw API call for routes :class:`~worldtree.app.remote.RemoteRuns` does not cover (agents, …)."""
    import httpx

    try:
        response = httpx.request(method, server.rstrip("/") + path, timeout=30.0, headers=_auth(token), **kwargs)
    except httpx.HTTPError as exc:
        raise ClientError(f"cannot reach {server}: {exc}; is `worldtree server` running there?") from None
    if response.status_code >= 400:
        raise _api_error(response, path)
    return response


def _remote(server: str, token: str | None, call: Callable[[RemoteRuns], T]) -> T:
    """One call through :class:`worldtree.app.remote.RemoteRuns` (the HTTP client MCP shares);
    its errors as exit codes: 2 for what the caller can fix, 1 for a server that failed."""
    from worldtree.app.remote import RemoteRuns
    from worldtree.errors import SpecError, UsageError, WorldtreeError

    try:
        remote = RemoteRuns(server, token)
    except UsageError as exc:
        raise ClientError(str(exc), 2) from None
    try:
        return call(remote)
    except SpecError:
        raise
    except UsageError as exc:
        raise ClientError(str(exc), 2) from None
    except WorldtreeError as exc:
        raise ClientError(str(exc), 1) from None
    finally:
        remote.close()


def _api_error(response: Any, path: str) -> ClientError:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return ClientError(f"{response.status_code} from the server on {path}")
    code = 2 if response.status_code in (400, 401, 403, 404, 422) else 1
    return ClientError(error.get("message") or f"{response.status_code}", code)


@client_app.command("run")
def run(file: Annotated[str, typer.Argument(help="Pipeline file.")], server: ServerOpt,
        env: Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME=value, overrides `env`.")] = None,
        detach: Annotated[bool, typer.Option("--detach", "-d", help="Print the run id and return.")] = False,
        token: TokenOpt = None) -> None:
    """Submit FILE, stream its logs, exit with the run's code (0 succeeded, 1 not, 2 bad document)."""
    try:
        code = _run(file, server, env or [], detach, token)
    except ClientError as exc:
        _fail(exc)
    raise typer.Exit(code)


def _run(file: str, server: str, env_pairs: list[str], detach: bool, token: str | None) -> int:
    try:
        with open(file, encoding="utf-8") as handle:
            document = handle.read()
    except OSError as exc:
        raise ClientError(f"{file}: cannot read it: {exc.strerror}; check the path", 2) from None
    env = {}
    for pair in env_pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ClientError(f"--env {pair!r}: write NAME=value", 2)
        env[name] = value
    from worldtree.errors import SpecError

    try:
        run_id = _remote(server, token, lambda remote: remote.submit(document, env=env, filename=file))["id"]
    except SpecError as exc:
        for diag in exc.diagnostics:
            typer.echo(diag.render(), err=True)
        return 2
    if detach:
        typer.echo(run_id)
        return 0
    typer.echo(f"run {run_id} queued on {server}", err=True)
    state = _follow(server, run_id, None, token)
    typer.echo(f"run {run_id} {state}", err=True)
    return 0 if state == "succeeded" else 1


def _follow(server: str, run_id: str, node: str | None, token: str | None) -> str:
    """Print the run's lines as they come; return its final state."""
    last = 0
    for event, data, seq in _events(server, run_id, node, token):
        if event == "end":
            return str(json.loads(data)["state"])
        if seq is not None:
            last = seq
        line = json.loads(data)
        out = sys.stderr if line["stream"] == "stderr" else sys.stdout
        out.write(f"{line['node']} | {line['line']}\n")
        out.flush()
    raise ClientError(f"lost the log stream of run {run_id} after line {last}; "
                      f"`worldtree client logs {run_id} --follow --server {server}` picks it up again")


def _events(server: str, run_id: str, node: str | None, token: str | None) -> Iterator[tuple[str, str, int | None]]:
    """``(event, data, id)`` from the SSE stream, reconnecting with Last-Event-ID (bounded)."""
    import httpx

    last: int | None = None
    give_up = time.monotonic() + RECONNECT_SECONDS
    url = f"{server.rstrip('/')}/api/v1/runs/{run_id}/logs/stream"
    while True:
        headers = {"Last-Event-ID": str(last)} if last is not None else {}
        headers.update(_auth(token))
        try:
            with httpx.stream("GET", url, params={"node": node} if node else None, headers=headers,
                              timeout=httpx.Timeout(30.0, read=60.0)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _api_error(response, url)
                event, data, seq = "message", list[str](), None
                for raw in response.iter_lines():
                    if raw == "":
                        if data:
                            if seq is not None:
                                last = seq
                            yield event, "\n".join(data), seq
                            if event == "end":
                                return
                        event, data, seq = "message", [], None
                        give_up = time.monotonic() + RECONNECT_SECONDS
                    elif raw.startswith(":"):
                        continue
                    else:
                        field, _, value = raw.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if field == "event":
                            event = value
                        elif field == "data":
                            data.append(value)
                        elif field == "id" and value.isdigit():
                            seq = int(value)
        except httpx.HTTPError:
            pass
        if time.monotonic() > give_up:
            return
        time.sleep(0.5)


@client_app.command("logs")
def logs(run_id: str, server: ServerOpt,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")] = False,
         node: Annotated[str | None, typer.Option("--node", help="Only this node (or job prefix).")] = None,
         token: TokenOpt = None) -> None:
    """Print a run's log lines (``--follow``: live, until it ends)."""
    try:
        if follow:
            state = _follow(server, run_id, node, token)
            raise typer.Exit(0 if state == "succeeded" else 1)
        offset = 0

        def page_after(after: int) -> dict[str, Any]:
            return _remote(server, token, lambda remote: remote.logs(run_id, node=node, offset=after, limit=10_000))

        for _ in range(100_000):  # bounded: 10,000 lines a page
            page = page_after(offset)
            for line in page["items"]:
                typer.echo(f"{line['node']} | {line['line']}")
            if not page["items"]:
                break
            offset = page["next_offset"]
    except ClientError as exc:
        _fail(exc)


@client_app.command("runs")
def runs(server: ServerOpt, state: Annotated[str | None, typer.Option("--state")] = None,
         page: int = 1, page_size: int = 50, token: TokenOpt = None) -> None:
    """List the server's runs, newest first."""
    try:
        body = _remote(server, token, lambda remote: remote.list_runs(page=page, page_size=page_size, state=state))
    except ClientError as exc:
        _fail(exc)
    for item in body["items"]:
        typer.echo(f"{item['id']}  {item['state']:<11} attempt {item['attempt']}  {item['pipeline']}")
    typer.echo(f"{len(body['items'])} of {body['total']}", err=True)


@client_app.command("cancel")
def cancel(run_id: str, server: ServerOpt, token: TokenOpt = None) -> None:
    """Ask the server to cancel a queued or running run."""
    try:
        _remote(server, token, lambda remote: remote.cancel(run_id))
    except ClientError as exc:
        _fail(exc)
    typer.echo(f"cancel requested for {run_id}", err=True)


@client_app.command("retry")
def retry(run_id: str, server: ServerOpt, token: TokenOpt = None) -> None:
    """Queue a new attempt of a run that did not succeed (succeeded steps are reused)."""
    try:
        _remote(server, token, lambda remote: remote.retry(run_id))
    except ClientError as exc:
        _fail(exc)
    typer.echo(f"retry queued for {run_id}", err=True)
