"""``worldtree artifacts list|get|purge``: job artifacts in the store (local runs, or a server's store)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

artifacts_app = typer.Typer(help="Files jobs collected with `artifacts:`: list, get, purge.", no_args_is_help=True)

DataDirOpt = Annotated[str | None, typer.Option(
    "--data-dir", envvar="WORLDTREE_DATA_DIR",
    help="A server's data dir (its blobs are in <data dir>/artifacts; default: beside the SQLite store).")]


def _store(data_dir: str | None) -> object:
    from worldtree.app import artifacts
    from worldtree.cli.main import _open_store

    if data_dir:
        artifacts.configure_root(Path(data_dir) / "artifacts")
    return _open_store()


@artifacts_app.command("list")
def list_command(run_id: Annotated[str, typer.Argument(help="The run (a unique prefix will do).")],
                 job: Annotated[str | None, typer.Option("--job", help="Only this job's.")] = None,
                 data_dir: DataDirOpt = None) -> None:
    """One line per artifact: id, job, size, path, expiry."""
    from worldtree.app import artifacts, service
    from worldtree.cli.main import _guard

    def rows() -> list[artifacts.Artifact]:
        store = _store(data_dir)
        return artifacts.list_artifacts(store, service.resolve(store, run_id), job)  # type: ignore[arg-type]

    for a in _guard(rows):
        expires = a.expires_at.isoformat(timespec="seconds") if a.expires_at else "never"
        typer.echo(f"{a.id}  {a.job}  {a.size:>10}  {a.path}  (expires {expires})")


@artifacts_app.command("get")
def get_command(artifact_id: Annotated[str, typer.Argument(help="An id from `worldtree artifacts list`.")],
                output: Annotated[str | None, typer.Option("-o", "--output", help="File to write (default: stdout).")]
                = None, data_dir: DataDirOpt = None) -> None:
    """Write an artifact's content to a file or stdout."""
    from worldtree.app import artifacts
    from worldtree.cli.main import _guard

    _, src = _guard(lambda: artifacts.open_artifact(_store(data_dir), artifact_id))  # type: ignore[arg-type]
    with src:
        if output is None:
            shutil.copyfileobj(src, sys.stdout.buffer)
        else:
            with open(output, "wb") as out:
                shutil.copyfileobj(src, out)


@artifacts_app.command("purge")
def purge_command(data_dir: DataDirOpt = None) -> None:
    """Delete expired artifacts now (a server also does it at start and hourly)."""
    from worldtree.app import artifacts
    from worldtree.cli.main import _guard

    count = _guard(lambda: artifacts.purge(_store(data_dir)))  # type: ignore[arg-type]
    typer.echo(f"purged {count} expired artifact(s)", err=True)
