"""``worldtree argo export|submit|stop``: a pipeline as an Argo Workflow, and running it on a cluster.

Export needs no cluster: it prints the manifest (YAML, or JSON with ``--json``) for ``kubectl
apply``/``create``. Submit creates it through the Kubernetes API and, with ``--watch``, prints
node phases as they change and exits 0 when the Workflow succeeds, 1 otherwise; Ctrl-C stops
the Workflow (``spec.shutdown: Stop``) before exiting. ``stop`` does the same from elsewhere.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

argo_app = typer.Typer(help="Export a pipeline as an Argo Workflow, submit it to a cluster, watch or stop it.",
                       no_args_is_help=True)

FileArg = Annotated[str, typer.Argument(help="Pipeline file (ci.yaml, a jobs map or the stages shape).")]
ConfigOpt = Annotated[str | None, typer.Option("--config", help="worldtree.yaml (runner sizes, argo: section).")]
NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-n", help="Kubernetes namespace.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="metadata.name (default: generateName from the "
                                                             "pipeline name; a CronWorkflow is named after it).")]
ImageOpt = Annotated[str | None, typer.Option("--image", help="Image for jobs without one (host jobs locally).")]
SecretOpt = Annotated[str | None, typer.Option("--secret-name", help="Kubernetes Secret holding `secrets:` keys.")]
TimezoneOpt = Annotated[str | None, typer.Option("--timezone", help="CronWorkflow timezone, e.g. Europe/Berlin.")]
PolicyOpt = Annotated[str | None, typer.Option("--concurrency-policy", help="CronWorkflow: Allow, Forbid or Replace.")]
KubeconfigOpt = Annotated[str, typer.Option("--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file.")]


def _guard(fn: Any) -> Any:
    from worldtree.cli.main import _guard as guard

    return guard(fn)


def _schedules(file: str) -> list[str]:
    """``on.schedule`` cron lines. The spec is read again only when the file mentions a schedule."""
    from pathlib import Path

    if "schedule" not in Path(file).read_text(encoding="utf-8", errors="replace"):
        return []
    from worldtree.compile.loader import load_pipeline

    on = load_pipeline(file).spec.on
    return [entry.cron for entry in on.schedule] if on is not None else []


def build_export(file: str, config: str | None, **overrides: str | None) -> Any:
    """Load, compile and convert ``file``; the same path for export and submit ."""
    from worldtree.app.runs import RunOptions, prepare
    from worldtree.argo.manifest import export_manifest
    from worldtree.argo.settings import ArgoSettings
    from worldtree.ops.config import load_config

    settings = ArgoSettings.from_config(load_config(config), **overrides)
    prepared = prepare(file, RunOptions(config_path=config))
    for diag in prepared.warnings:
        typer.echo(diag.render(), err=True)
    return export_manifest(prepared.graph, settings, _schedules(file))


def render(manifest: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(manifest, indent=2) + "\n"
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: 2 MB of YAML in a fraction of the time
    return str(yaml.dump(manifest, Dumper=dumper, sort_keys=False, width=120, allow_unicode=True))


@argo_app.command("export")
def export(file: FileArg, config: ConfigOpt = None, namespace: NamespaceOpt = None, name: NameOpt = None,
           image: ImageOpt = None, secret_name: SecretOpt = None, timezone: TimezoneOpt = None,
           concurrency_policy: PolicyOpt = None,
           as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML.")] = False) -> None:
    """Print the Argo Workflow (or CronWorkflow, for `on.schedule`) that runs FILE."""
    result = _guard(lambda: build_export(file, config, namespace=namespace, name=name, default_image=image,
                                         secret_name=secret_name, timezone=timezone,
                                         concurrency_policy=concurrency_policy))
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    sys.stdout.write(render(result.manifest, as_json))


@argo_app.command("submit")
def submit(file: FileArg, kubeconfig: KubeconfigOpt, config: ConfigOpt = None, namespace: NamespaceOpt = None,
           name: NameOpt = None, image: ImageOpt = None, secret_name: SecretOpt = None,
           watch: Annotated[bool, typer.Option("--watch", help="Follow the Workflow; exit 0/1 by its phase.")] = False,
           record: Annotated[bool, typer.Option("--record/--no-record",
                                                help="With --watch: mirror phases into the run store.")] = True,
           timeout: Annotated[float, typer.Option("--timeout", help="Seconds to watch at most.")] = 86400.0) -> None:
    """Create FILE's Workflow (or CronWorkflow) in the cluster; with --watch, follow it to the end."""
    from worldtree.argo.kube import ArgoClient, PhaseTracker
    from worldtree.cli.main import _open_store

    result = _guard(lambda: build_export(file, config, namespace=namespace, name=name, default_image=image,
                                         secret_name=secret_name))
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    client = _guard(lambda: ArgoClient(kubeconfig))
    ns = namespace or result.manifest["metadata"].get("namespace") or client.default_namespace
    created = _guard(lambda: client.create(result.manifest, ns))
    created_name = created["metadata"]["name"]
    typer.echo(f"{result.kind} {ns}/{created_name} created")
    if not watch or result.kind != "Workflow":
        return
    tracker = PhaseTracker(typer.echo)
    mirror = None
    if record:
        from worldtree.argo.mirror import RunMirror

        store = _guard(_open_store)
        mirror = _guard(lambda: RunMirror(store, result.graph, result.tasks, namespace=ns, workflow=created_name))
        typer.echo(f"run {mirror.run_id}")

    def report(obj: dict[str, Any]) -> None:
        tracker(obj)
        if mirror is not None:
            mirror(obj)

    def follow() -> dict[str, Any] | None:
        try:
            return client.follow(created_name, ns, report, timeout)
        except KeyboardInterrupt:
            return None

    final: dict[str, Any] | None = None
    stopped = False
    try:
        final = _guard(follow)
        if final is None:  # Ctrl-C: stop it in the cluster too, and show how it ends
            stopped = True
            typer.echo(f"stopping Workflow {created_name} (spec.shutdown: Stop)", err=True)
            _guard(lambda: client.stop(created_name, ns))
            final = _guard(lambda: client.follow(created_name, ns, report, 120.0))
    finally:
        if mirror is not None:
            phase_seen = ((final or {}).get("status") or {}).get("phase")
            _guard(lambda: mirror.finish(phase_seen, stopped=stopped))
    phase = ((final or {}).get("status") or {}).get("phase")
    raise typer.Exit(0 if phase == "Succeeded" and not stopped else 1)


@argo_app.command("stop")
def stop(name: Annotated[str, typer.Argument(help="Workflow name.")], kubeconfig: KubeconfigOpt,
         namespace: NamespaceOpt = None) -> None:
    """Stop a running Workflow (spec.shutdown: Stop): running pods end, nothing new starts, exit handlers run."""
    from worldtree.argo.kube import ArgoClient

    client = _guard(lambda: ArgoClient(kubeconfig))
    ns = namespace or client.default_namespace
    _guard(lambda: client.stop(name, ns))
    typer.echo(f"Workflow {ns}/{name}: stop requested")
