"""Seed 002 §2: an ExecutionGraph as an Argo ``Workflow``, or a ``CronWorkflow`` for ``on.schedule``.

Built with Hera's typed models of Argo's API (``hera.workflows.models``; no cluster needed) and
dumped to plain JSON-able dicts. The mapping:

=====================  =========================================================================
worldtree              Argo
=====================  =========================================================================
pipeline               one ``dag`` template, the entrypoint; ``on_failure: continue`` →
                       ``failFast: false``; pipeline timeout → ``spec.activeDeadlineSeconds``
job (or step, see      a DAG task and its ``container`` template: ``command: [/bin/sh, -c]``, the
``tasks``)             steps as the script (``script``), the job's image or ``default_image``
``needs``/stage order  ``dependencies`` (``depends`` when a condition is involved, ``depends``)
``runner``             ``resources.requests`` from the ``runners:`` size map
``environment``        ``env``;  ``secrets`` → ``env[].valueFrom.secretKeyRef`` (one Secret)
timeouts               the template's ``activeDeadlineSeconds`` (per try: the step's own, else the
                       nearest job/stage timeout)
``retry``              ``retryStrategy`` (``limit``, ``retryPolicy: Always``, ``backoff``
                       duration/factor 2/cap)
``allow_failure``      ``continueOn: {failed: true}``
workspace              one ``volumeClaimTemplates`` volume mounted by every task at ``mount_path``
``on.schedule``        ``CronWorkflow`` with ``schedules`` (a list), ``timezone``, ``concurrencyPolicy``
=====================  =========================================================================

What Argo cannot express is refused with the job's name (SSH targets, plugin, language and
service steps) or reported as a warning (``rollback:``, ``{{`` in a script, which Argo treats as
a template tag).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from worldtree.argo.depends import DepInfo, task_condition
from worldtree.argo.script import common_env, task_script
from worldtree.argo.settings import ArgoSettings
from worldtree.argo.tasks import TaskPlan, plan_tasks
from worldtree.errors import UsageError
from worldtree.model.conditions import parse, uses_status
from worldtree.model.graph import ExecutionGraph, Node, slug

__all__ = ["API_VERSION", "Export", "export_manifest", "kube_literal"]

API_VERSION = "argoproj.io/v1alpha1"
WORKSPACE_VOLUME = "workspace"
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
DAG_TEMPLATE = "pipeline"


@dataclass
class Export:
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    #: the DAG's tasks (which graph nodes each runs), for mirroring phases into the run store
    tasks: list[TaskPlan] = field(default_factory=list)
    graph: ExecutionGraph | None = None

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])


def kube_literal(text: str) -> str:
    """``text`` as Kubernetes passes it on: the kubelet expands ``$(NAME)`` in ``env`` values, ``command``
    and ``args`` and turns ``$$`` into ``$``, which would change ``$(date)`` or ``$$`` in a script.
    Doubling every ``$`` makes the kubelet hand over exactly ``text``."""
    return text.replace("$", "$$")


def _seconds(value: float) -> str:
    return f"{max(1, math.ceil(value))}s"


def _image(node: Node, settings: ArgoSettings) -> str:
    target = node.target
    where = f"job {node.job!r} (step {node.path})"
    if target.kind == "ssh" or target.engine:
        raise UsageError(f"{where} runs over SSH ({target.kind}); argo export maps container and host jobs only: "
                         "give the job an `image:` or leave it out of the Argo pipeline")
    if target.language is not None:
        from worldtree.backends.docker.convert import language_entry
        from worldtree.errors import BackendError

        try:
            return language_entry(target.language, {"languages": settings.languages})[0]
        except BackendError as exc:
            raise UsageError(f"{where}: {exc}") from None
    for kind in ("plugin", "service"):
        if getattr(target, kind) is not None:
            raise UsageError(f"{where} is a {kind} step, which argo export does not map yet; use `image:` and "
                             "`run:` for it")
    if target.kind not in ("host", "docker"):
        raise UsageError(f"{where} runs on {target.kind!r}; argo export maps container and host jobs only")
    if target.image_registry_password:
        raise UsageError(f"{where} pulls with registry credentials, which argo export does not map; use an "
                         "imagePullSecret on the service account instead")
    return target.image or settings.default_image


class _Builder:
    def __init__(self, graph: ExecutionGraph, settings: ArgoSettings) -> None:
        from hera.workflows import models as m

        self.m = m
        self.graph = graph
        self.settings = settings
        self.warnings: list[str] = []

    def resources(self, node: Node) -> Any:
        runner = node.target.runner
        if runner is None:
            return None
        size = self.settings.runners.get(runner)
        if size is None:
            known = ", ".join(sorted(self.settings.runners)) or "none"
            raise UsageError(f"job {node.job}: runner {runner!r} is not in the runner size map ({known}); add it "
                             "under `runners:` in worldtree.yaml")
        return self.m.ResourceRequirements(requests={k: self.m.Quantity(v) for k, v in size.items()})

    def deadline(self, task: TaskPlan) -> int | None:
        """Per-try bound: the step's own timeout (one-step tasks) or the nearest job/stage timeout."""
        node = task.first
        candidates = [node.timeout] if len(task.nodes) == 1 and node.timeout else []
        for scope_id in node.scopes:
            scope = self.graph.scopes.get(scope_id)
            if scope is not None and scope.kind != "pipeline" and scope.timeout:
                candidates.append(scope.timeout)
        return math.ceil(min(candidates)) if candidates else None

    def template(self, task: TaskPlan) -> Any:
        m, node = self.m, task.first
        image = _image(node, self.settings)  # first: it refuses what cannot run, by the job's name
        for n in task.nodes:
            if n.rollback:
                self.warnings.append(f"{n.path}: `rollback:` is not mapped to Argo (it will not run)")
        env = [m.EnvVar(name=k, value=kube_literal(v)) for k, v in common_env(task.nodes).items()]
        for secret in node.secrets:
            if not _SECRET_KEY.match(secret):
                raise UsageError(f"job {node.job!r}: secret {secret!r} cannot be a key of a Kubernetes Secret "
                                 "(letters, digits, '-', '_' and '.'); rename it")
        env += [m.EnvVar(name=s, value_from=m.EnvVarSource(secret_key_ref=m.SecretKeySelector(
            name=self.settings.secret_name, key=s))) for s in node.secrets]
        script = task_script(task.nodes, self.settings.languages)
        if "{{" in script:
            self.warnings.append(f"task {task.name}: the script contains '{{{{', which Argo reads as a template tag")
        deadline = self.deadline(task)
        retry = None  # IntOrString fields are written as strings: Argo's JSON Schema types them so
        if node.retry.max > 0:
            retry = m.RetryStrategy(limit=m.IntOrString(str(node.retry.max)), retry_policy="Always",
                                    backoff=m.Backoff(duration=_seconds(node.retry.backoff), factor=m.IntOrString("2"),
                                                      cap=_seconds(node.retry.max_backoff)))
        return m.Template(
            name=task.name,
            container=m.Container(
                image=image, command=["/bin/sh", "-c"], args=[kube_literal(script)],
                env=env or None, resources=self.resources(node), working_dir=self.settings.workspace_mount,
                volume_mounts=[m.VolumeMount(name=WORKSPACE_VOLUME, mount_path=self.settings.workspace_mount)]),
            active_deadline_seconds=m.IntOrString(str(deadline)) if deadline else None,
            retry_strategy=retry)

    def dag(self, tasks: list[TaskPlan]) -> tuple[list[Any], bool]:
        """The DAG's tasks, and whether a task waits for failures (then the DAG must not fail fast)."""
        m = self.m
        by_name = {t.name: t for t in tasks}
        info = {t.name: DepInfo(t.name, allow_failure=t.first.allow_failure and len(t.nodes) == 1,
                                conditional=_conditional(t))
                for t in tasks}
        handles_failure = False
        out = []
        for task in tasks:
            node = task.first
            cond = None
            if len(task.nodes) == 1:
                wants_failure = node.when == "on_failure" or "failure" in (node.condition or "")
                ancestors = _ancestors(task, by_name) if wants_failure else []  # only failure() reads them
                cond = task_condition(node, [info[d] for d in task.deps], [info[a] for a in ancestors],
                                      {**self.graph.env, **node.env})
                handles_failure = handles_failure or (info[task.name].conditional and node.when != "on_success") \
                    or (node.condition is not None and uses_status(parse(node.condition)))
            dag_task = m.DAGTask(name=task.name, template=task.name,
                                 continue_on=m.ContinueOn(failed=True) if info[task.name].allow_failure else None)
            if isinstance(cond, str):
                dag_task.depends = cond
            else:
                dag_task.dependencies = list(task.deps) or None
                if cond is False:
                    dag_task.when = "false"
            out.append(dag_task)
        return out, handles_failure

    def build(self, schedules: list[str]) -> Export:
        m, s, graph = self.m, self.settings, self.graph
        tasks = plan_tasks(graph)
        dag_tasks, handles_failure = self.dag(tasks)
        # Fail fast unless told to continue, or a failure()/always() task must still be scheduled.
        fail_fast = graph.on_failure != "continue" and not handles_failure
        templates = [m.Template(name=DAG_TEMPLATE, dag=m.DAGTemplate(tasks=dag_tasks,
                                                                      fail_fast=None if fail_fast else False))]
        templates += [self.template(t) for t in tasks]
        pipeline = graph.scopes.get("pipeline")
        claim = m.PersistentVolumeClaim(
            metadata=m.ObjectMeta(name=WORKSPACE_VOLUME),
            spec=m.PersistentVolumeClaimSpec(
                access_modes=[s.workspace_access_mode], storage_class_name=s.workspace_storage_class,
                resources=m.VolumeResourceRequirements(requests={"storage": m.Quantity(s.workspace_size)})))
        spec = m.WorkflowSpec(
            entrypoint=DAG_TEMPLATE, templates=templates, volume_claim_templates=[claim],
            service_account_name=s.service_account,
            active_deadline_seconds=math.ceil(pipeline.timeout)
            if pipeline is not None and pipeline.timeout else None)
        base = slug(graph.name)[:52].strip("-") or "pipeline"
        labels = {"app.kubernetes.io/managed-by": "worldtree"}
        if schedules:
            _check_schedules(schedules, s.name or base)
            meta = m.ObjectMeta(name=s.name or base, namespace=s.namespace, labels=labels)
            cron = m.CronWorkflow(api_version=API_VERSION, kind="CronWorkflow", metadata=meta, spec=m.CronWorkflowSpec(
                schedules=schedules, timezone=s.timezone, concurrency_policy=s.concurrency_policy,
                workflow_spec=spec))
            return Export(cron.model_dump(by_alias=True, exclude_none=True, mode="json"), self.warnings, tasks)
        meta = m.ObjectMeta(name=s.name, generate_name=None if s.name else f"{base}-", namespace=s.namespace,
                            labels=labels)
        workflow = m.Workflow(api_version=API_VERSION, kind="Workflow", metadata=meta, spec=spec)
        return Export(workflow.model_dump(by_alias=True, exclude_none=True, mode="json"), self.warnings, tasks)


#: Argo appends a timestamp to a CronWorkflow's name for each Workflow it starts.
CRON_NAME_MAX = 52


def _check_schedules(schedules: list[str], name: str) -> None:
    """Refuse what Argo's cron parser would (five fields, or a descriptor such as ``@daily``)."""
    for line in schedules:
        if not (line.strip().startswith("@") or len(line.split()) == 5):
            raise UsageError(f"on.schedule cron {line!r} must have five fields (minute hour day month weekday) "
                             "or be a descriptor like @daily")
    if len(name) > CRON_NAME_MAX:
        raise UsageError(f"CronWorkflow name {name!r} is longer than {CRON_NAME_MAX} characters (Argo adds a "
                         "timestamp to it); give a shorter --name")


def _conditional(task: TaskPlan) -> bool:
    node = task.first
    return len(task.nodes) == 1 and (node.when != "on_success" or node.condition is not None or node.kind == "post")


def _ancestors(task: TaskPlan, by_name: dict[str, TaskPlan]) -> list[str]:
    """Every task ``task`` transitively waits for (what ``failure()`` looks at), nearest first."""
    seen: dict[str, None] = {}
    stack = list(reversed(task.deps))
    while stack:  # bounded: each task is visited once
        name = stack.pop()
        if name not in seen:
            seen[name] = None
            stack.extend(reversed(by_name[name].deps))
    return list(seen)


def export_manifest(graph: ExecutionGraph, settings: ArgoSettings, schedules: list[str] | None = None) -> Export:
    """The manifest for ``graph``: a CronWorkflow when ``schedules`` (cron lines) are given, else a Workflow.

    Raises UsageError (exit 2) for what Argo cannot run, naming the job and what to change.
    """
    result = _Builder(graph, settings).build(list(schedules or []))
    result.graph = graph
    return result
