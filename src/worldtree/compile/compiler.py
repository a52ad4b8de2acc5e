"""PipelineSpec -> ExecutionGraph: resolve inheritance, derive ids and edges, pick targets."""

from __future__ import annotations

from worldtree.compile.jobs import JobEntry, job_dependencies, job_entries
from worldtree.compile.op_steps import OP_STEP_ENV, op_commands
from worldtree.compile.routing import idp_target_fields, node_selector
from worldtree.model.graph import ExecutionGraph, Node, RetryPolicy, Scope, Target, path_segment, slug
from worldtree.model.spec import InheritedFields, PipelineSpec, RetrySpec, StepSpec

#: Seed 003 §12.1: a pipeline's default timeout is one day.
DEFAULT_PIPELINE_TIMEOUT = 86400.0


def compile_pipeline(spec: PipelineSpec, *, source: str | None = None,
                     env_overrides: dict[str, str] | None = None) -> ExecutionGraph:
    """Compile a loaded spec. ``env_overrides`` (``--env K=V``) win over every level of the file."""
    overrides = env_overrides or {}
    entries = job_entries(spec)
    deps = job_dependencies(spec, entries)
    scopes: dict[str, Scope] = {
        "pipeline": Scope(id="pipeline", kind="pipeline", name=spec.name,
                          timeout=spec.timeout if spec.timeout is not None else DEFAULT_PIPELINE_TIMEOUT)}
    nodes: list[Node] = []
    first_of: dict[str, str] = {}
    last_of: dict[str, str] = {}
    for entry in entries:
        job_nodes = _job_nodes(spec, entry, scopes, overrides, source)
        first_of[entry.name], last_of[entry.name] = job_nodes[0].id, job_nodes[-1].id
        nodes.extend(job_nodes)
    by_id = {n.id: n for n in nodes}
    for entry in entries:
        head = by_id[first_of[entry.name]]
        head.needs = [last_of[d] for d in deps[entry.name]] + head.needs
    pipeline_env = {**spec.environment, **overrides}
    if spec.pre:
        entry_nodes = [n for n in nodes if not n.needs]
        pre = _hook("pre", spec.pre, spec, pipeline_env)
        for n in entry_nodes:
            n.needs.append(pre.id)
        nodes.insert(0, pre)
    if spec.post:
        needed = {d for n in nodes for d in n.needs}
        post = _hook("post", spec.post, spec, pipeline_env)
        post.needs = [n.id for n in nodes if n.id not in needed]
        post.when = "always"
        nodes.append(post)
    return ExecutionGraph(name=spec.name, source=source, workdir=spec.workdir, on_failure=spec.on_failure,
                          env=pipeline_env, scopes=scopes, nodes=nodes)


def _hook(kind: str, command: str, spec: PipelineSpec, env: dict[str, str]) -> Node:
    return Node(id=kind, path=kind, name=kind, kind=kind, job=kind, command=command,  # type: ignore[arg-type]
                shell=spec.shell or "sh", env=dict(env), scopes=["pipeline"], target=Target(kind="host"))


def _pick(*levels: InheritedFields | None, attr: str) -> object:
    """The innermost level that sets ``attr`` (Step -> Job -> Stage -> Pipeline)."""
    for level in levels:
        if level is not None and getattr(level, attr) is not None:
            return getattr(level, attr)
    return None


def _job_nodes(spec: PipelineSpec, entry: JobEntry, scopes: dict[str, Scope],
               overrides: dict[str, str], source: str | None = None) -> list[Node]:
    job, stage = entry.job, entry.stage
    stage_scope = f"stage:{slug(stage.name)}" if stage is not None else None
    job_key = f"{slug(stage.name)}/{slug(entry.name)}" if stage is not None else slug(entry.name)
    job_scope = f"job:{job_key}"
    if stage_scope and stage_scope not in scopes:
        scopes[stage_scope] = Scope(id=stage_scope, kind="stage", name=stage.name,  # type: ignore[union-attr]
                                    timeout=stage.timeout)  # type: ignore[union-attr]
    scopes[job_scope] = Scope(id=job_scope, kind="job", name=entry.name, timeout=job.timeout,
                              artifacts=job.artifacts)
    scope_ids = ["pipeline", *([stage_scope] if stage_scope else []), job_scope]
    base_env = {**spec.environment, **(stage.environment if stage else {}), **job.environment}
    secrets = list(dict.fromkeys([*spec.secrets, *job.secrets]))
    out: list[Node] = []
    previous: str | None = None
    for i, step in enumerate(job.steps):
        step_name = step.name or f"step-{i + 1}"
        levels = (step, job, stage, spec)
        path_parts = [path_segment(p) for p in (*([stage.name] if stage else []), entry.name, step_name)]
        node_id = f"{job_key}/{slug(step_name)}"
        retry = step.retry or job.retry
        command, rollback = _command(step), step.rollback
        target = _target(step, levels, job.runner, job.hosts)
        if step.op is not None:
            engine = _pick(*levels, attr="engine")
            command, op_rollback = op_commands(step, source, str(engine) if engine is not None else None)
            rollback = rollback if rollback is not None else op_rollback
            # the operation runs here and reaches an ssh:// engine (or each fanned-out host) itself, over SFTP
            target = Target(kind="host", runner=job.runner, hosts=list(job.hosts) or None)
        out.append(Node(
            id=node_id,
            path="/".join(path_parts),
            name=step_name,
            stage=stage.name if stage else None,
            job=entry.name,
            command=command,
            shell=str(_pick(*levels, attr="shell") or "sh"),
            env={**base_env, **step.environment, **overrides, **({OP_STEP_ENV: "1"} if step.op else {})},
            secrets=secrets,
            workdir=_pick(step, job, stage, attr="workdir"),  # type: ignore[arg-type]
            timeout=step.timeout,
            scopes=scope_ids,
            retry=_retry(retry),
            allow_failure=step.allow_failure if step.allow_failure is not None else job.allow_failure,
            when=step.when or job.when,
            condition=step.if_ or job.if_,
            precheck=step.precheck,
            rollback=rollback,
            target=target,
            needs=[previous] if previous else [],
            selector=node_selector(job, stage, spec),
        ))
        previous = node_id
    return out


def _command(step: StepSpec) -> str:
    if step.script is not None:
        return step.script
    if step.plugin is not None:
        return step.plugin.entrypoint or "/pipeline/plugin/run"
    if step.service is not None:
        return f"service {step.service.type} {step.service.name}@{step.service.version}"
    return ""


def _retry(spec: RetrySpec | None) -> RetryPolicy:
    return RetryPolicy() if spec is None else RetryPolicy(max=spec.max, backoff=spec.backoff)


_REGISTRY_FIELDS = ("image_registry", "image_registry_username", "image_registry_password")


def _target(step: StepSpec, levels: tuple[InheritedFields | None, ...], runner: str | None,
            runner_hosts: list[str]) -> Target:
    engine = _pick(*levels, attr="engine")
    image = _pick(*levels, attr="image")
    # A plugin's own registry login wins over the one its step inherits (seed 003 step/setup.go).
    registry = {f: (getattr(step.plugin, f, None) if step.plugin else None) or _pick(*levels, attr=f)
                for f in _REGISTRY_FIELDS}
    kind = "host"
    engine_text = str(engine) if engine is not None else None
    if runner_hosts:
        kind = "ssh"
    elif engine_text and "://" in engine_text:
        kind = engine_text.split("://", 1)[0]
        kind = "idp" if kind == "idps" else kind
    elif step.plugin or step.language or step.service:
        kind = "docker"
    elif engine_text == "host":  # an explicit host engine wins over an inherited image
        kind = "host"
    elif image or engine_text == "docker":
        kind = "docker"
    elif engine_text:
        kind = engine_text
    return Target(
        kind=kind, engine=engine_text, image=image, runner=runner,  # type: ignore[arg-type]
        hosts=list(runner_hosts) or None,
        plugin=step.plugin.model_dump(exclude_none=True, exclude=set(_REGISTRY_FIELDS)) if step.plugin else None,
        language=step.language.model_dump(exclude_none=True) if step.language else None,
        service=step.service.model_dump(exclude_none=True) if step.service else None,
        **registry,  # type: ignore[arg-type]
        **idp_target_fields(engine_text if kind == "idp" else None),
    )
