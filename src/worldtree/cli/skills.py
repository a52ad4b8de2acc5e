"""``worldtree skills``: list, show, sync and add sources of skills (a thin client of worldtree.skills)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

skills_app = typer.Typer(help="Skills (skills/<name>/SKILL.md) that plans and summaries cite; never executed.",
                         no_args_is_help=True)
RepoOpt = Annotated[Path, typer.Option("--repo", help="Repository root whose ./skills come first.")]


def _rows(ctx: typer.Context) -> Any:
    from worldtree.cli.main import _guard
    from worldtree.store import open_store
    from worldtree.store.server_data import engine_of
    from worldtree.store.stacks import StackRows

    store = _guard(lambda: open_store(ctx.find_root().params.get("store")))
    return StackRows(engine_of(store)), store


def _guard(fn: Any) -> Any:
    from worldtree.cli.main import _guard as guard

    return guard(fn)


@skills_app.command("list")
def list_cmd(ctx: typer.Context, repo: RepoOpt = Path("."),
             as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The effective skills: ./skills, then synced sources by priority (later wins)."""
    from worldtree.skills import load_skills

    rows, store = _rows(ctx)
    try:
        found = _guard(lambda: load_skills(repo, rows))
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([s.summary() for s in found], indent=2))
        return
    for s in found:
        typer.echo(f"{s.name:<24} {s.source:<12} {s.version[:12]:<12} {s.sha256[:12]}  {s.origin}")
    if not found:
        typer.echo("no skills: add skills/<name>/SKILL.md, or `worldtree skills add-source` then `sync`", err=True)


@skills_app.command("show")
def show_cmd(ctx: typer.Context, name: str, repo: RepoOpt = Path(".")) -> None:
    """Print one skill's text, after its origin, version and sha256."""
    from worldtree.errors import UsageError
    from worldtree.skills import load_skills

    rows, store = _rows(ctx)
    try:
        found = {s.name: s for s in _guard(lambda: load_skills(repo, rows))}
    finally:
        store.close()

    def pick() -> Any:
        if name not in found:
            raise UsageError(f"no skill {name!r}; `worldtree skills list` shows them")
        return found[name]

    skill = _guard(pick)
    typer.echo(f"# {skill.name}  origin={skill.origin} version={skill.version} sha256={skill.sha256}", err=True)
    typer.echo(skill.content, nl=not skill.content.endswith("\n"))


@skills_app.command("add-source")
def add_source_cmd(
    ctx: typer.Context,
    name: str,
    kind: Annotated[str, typer.Option("--kind", help="local, git or http.")],
    uri: Annotated[str, typer.Option("--uri", help="Directory, git URL or http(s) URL of a SKILL.md.")],
    ref: Annotated[str | None, typer.Option("--ref", help="git: branch, tag or commit (default HEAD).")] = None,
    path: Annotated[str | None, typer.Option("--path", help="git/local: folder holding <name>/SKILL.md; "
                                                            "http: the skill's name.")] = None,
    priority: Annotated[int, typer.Option("--priority", help="Higher wins over lower (and over ./skills).")] = 100,
) -> None:
    """Add (or replace) an external skill source; `worldtree skills sync` fetches it."""
    from worldtree.skills.catalog import add_source

    rows, store = _rows(ctx)
    try:
        _guard(lambda: add_source(rows, name, kind, uri, ref, path, priority))
    finally:
        store.close()
    typer.echo(f"source {name} added; run `worldtree skills sync`", err=True)


@skills_app.command("sync")
def sync_cmd(ctx: typer.Context) -> None:
    """Fetch every source into the store's skills cache (a failing source keeps its old cache; exit 1)."""
    from worldtree.skills import sync_sources

    rows, store = _rows(ctx)
    try:
        report = _guard(lambda: sync_sources(rows))
    finally:
        store.close()
    typer.echo(json.dumps(report, indent=2))
    raise typer.Exit(1 if any("error" in r for r in report) else 0)
