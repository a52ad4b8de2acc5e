"""gRPC JobService (``api/job/v1/job.proto``): the second door onto the functions REST calls.

Each RPC translates its request into one call of :mod:`worldtree.app.jobs`,
:mod:`worldtree.app.service` or :mod:`worldtree.app.pipelines` and the plain result into the
response message; no business logic lives here. Our errors become status codes once, in
:func:`_guard`: a located document error is INVALID_ARGUMENT with every diagnostic, a missing job
NOT_FOUND, a state that forbids the operation FAILED_PRECONDITION, a lost compare-and-set ABORTED,
an unreachable store UNAVAILABLE. The token is checked by the server's interceptor
(``server/grpc_server.py``: ``authorization: Bearer …``; Get/List need viewer, the rest maintainer).

What has no application function says so with UNIMPLEMENTED rather than pretending: UpdateJob (a
queued job's definition is stored with its run's graph and never edited; cancel it and create it
again), and CreateJob's ``pipeline_id``/``depends_on`` (a job joins a pipeline by editing the
stored pipeline's document).

``grpc_server._mount_jobs`` mounts this module through :func:`add_to_server`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc

from worldtree.api.agent.v1 import agent_pb2 as apb
from worldtree.api.job.v1 import job_pb2 as jpb
from worldtree.api.job.v1 import job_pb2_grpc
from worldtree.app import jobs, service
from worldtree.app.service import NotFoundError, ServiceConfig, StateConflictError
from worldtree.errors import ConflictError, SpecError, StoreError, UsageError
from worldtree.model.labels import OPERATORS
from worldtree.store.api import RunStore

__all__ = ["JobService", "add_to_server"]

T = TypeVar("T")
_STATUS = {"queued": apb.JOB_STATUS_QUEUED, "pending": apb.JOB_STATUS_PENDING, "running": apb.JOB_STATUS_RUNNING,
           "succeeded": apb.JOB_STATUS_SUCCESS, "reused": apb.JOB_STATUS_SUCCESS, "failed": apb.JOB_STATUS_FAILED,
           "cancelled": apb.JOB_STATUS_CANCELLED, "timed_out": apb.JOB_STATUS_TIMEOUT,
           "skipped": apb.JOB_STATUS_SKIPPED}
_STATE_OF = {code: name for name, code in _STATUS.items() if name != "reused"}
_STREAMS = {"stdout": apb.LOG_STREAM_STDOUT, "stderr": apb.LOG_STREAM_STDERR, "system": apb.LOG_STREAM_SYSTEM}
_OPERATOR = {getattr(apb, f"LABEL_OPERATOR_{name}"): name for name in OPERATORS}


#: bytes of an error's details sent: they travel percent-encoded in a trailer, and gRPC refuses trailers
#: over 8 KiB (a message echoing a 10 KB job id came back RESOURCE_EXHAUSTED instead of its own code)
MAX_DETAILS = 2000
#: pages of stored pipelines ListPipelines reads to filter them by name (200 each: 10,000 pipelines)
NAME_SCAN_PAGES = 50


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    """``context.abort`` with ``message`` cut to :data:`MAX_DETAILS` UTF-8 bytes."""
    raw = message.encode("utf-8")
    if len(raw) > MAX_DETAILS:
        message = raw[:MAX_DETAILS].decode("utf-8", "ignore") + f"… ({len(raw) - MAX_DETAILS} more bytes)"
    context.abort(code, message)


def _guard(context: grpc.ServicerContext, body: Callable[[], T]) -> T:
    """Run ``body``; worldtree's errors become status codes (``context.abort`` raises)."""
    try:
        return body()
    except SpecError as exc:
        _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "\n".join(d.render() for d in exc.diagnostics))
    except NotFoundError as exc:
        _abort(context, grpc.StatusCode.NOT_FOUND, str(exc))
    except StateConflictError as exc:
        _abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except ConflictError as exc:
        _abort(context, grpc.StatusCode.ABORTED, str(exc))
    except UsageError as exc:
        _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except StoreError as exc:
        _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
    except ImportError as exc:  # a feature another part of the server has not shipped
        _abort(context, grpc.StatusCode.UNIMPLEMENTED, f"not available in this server: {exc}")
    raise AssertionError("unreachable")  # context.abort always raises


def _ms(iso: str | datetime | None) -> int:
    if iso is None:
        return 0
    moment = datetime.fromisoformat(iso) if isinstance(iso, str) else iso
    return int(moment.timestamp() * 1000)


def _selector_in(message: apb.LabelSelector) -> dict[str, Any] | None:
    """The proto selector as the spec's dict (None when empty); an unset operator is refused by the loader."""
    # a number no LabelOperator names (a newer client's) goes to the loader as digits, which it refuses
    expressions = [{"key": e.key, "operator": _OPERATOR.get(e.operator, _operator_name(e.operator)),
                    "values": list(e.values)} for e in message.match_expressions]
    if not message.match_labels and not expressions:
        return None
    return {"match_labels": dict(message.match_labels), "match_expressions": expressions}


def _operator_name(number: int) -> str:
    return apb.LabelOperator.Name(number) if number in apb.LabelOperator.values() else str(number)


def _selector_out(data: dict[str, Any] | None) -> apb.LabelSelector:
    if not data:
        return apb.LabelSelector()
    return apb.LabelSelector(match_labels=data.get("match_labels") or {}, match_expressions=[
        apb.LabelExpression(key=e["key"], operator=getattr(apb, f"LABEL_OPERATOR_{e['operator']}"),
                            values=e.get("values") or []) for e in data.get("match_expressions") or []])


def job_detail(view: dict[str, Any]) -> jpb.JobDetail:
    """A job view of :mod:`worldtree.app.jobs` as JobDetail."""
    nodes = view["nodes"]
    return jpb.JobDetail(
        job_id=view["id"], name=view["name"], run_id=view["run_id"], pipeline_id=view["pipeline"],
        stage=view["stage"] or "", status=_STATUS.get(view["state"], apb.JOB_STATUS_UNSPECIFIED),
        commands=[line for n in nodes for line in n["command"].splitlines()], env=view["env"],
        image=view["image"] or "", timeout_seconds=int(view["timeout"] or 0), depends_on=view["needs"],
        allow_failure=view["allow_failure"], retry_count=view["retry_count"],
        label_selector=_selector_out(view["label_selector"]), agent_id=view["executor"] or "",
        exit_code=view["exit_code"] or 0, attempt=view["attempt"], created_at_ms=_ms(view["created_at"]),
        started_at_ms=_ms(view["started_at"]), finished_at_ms=_ms(view["finished_at"]),
        message=next((n["error"] for n in nodes if n["error"]), ""),
        steps=[jpb.StepDetail(name=n["name"], status=_STATUS.get(n["state"], apb.JOB_STATUS_UNSPECIFIED),
                              exit_code=n["exit_code"] or 0, tries=n["try"], message=n["error"] or "",
                              started_at_ms=_ms(n["started_at"]), finished_at_ms=_ms(n["finished_at"]))
               for n in nodes])


def _page(page: jpb.PageRequest, context: grpc.ServicerContext) -> tuple[int, int]:
    """(page, page_size), unset ones defaulted; a negative or too large one is INVALID_ARGUMENT here,
    whichever listing it then goes to (ListJobs by pipeline pages in memory and sliced with it)."""
    number, size = page.page or 1, page.page_size or 20
    if number < 1 or not 1 <= size <= service.MAX_PAGE_SIZE:
        _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
               f"page must be 1 or more and page_size between 1 and {service.MAX_PAGE_SIZE}")
    return number, size


class JobService(job_pb2_grpc.JobServiceServicer):
    """Thin translation; see the module docstring. Thread-safe (the app functions are)."""

    def __init__(self, store: RunStore, config: ServiceConfig | None = None) -> None:
        self.store = store
        self.config = config or ServiceConfig(data_dir=str(_data_dir(store)))

    # -- jobs ---------------------------------------------------------------------------------
    def CreateJob(self, request: jpb.CreateJobRequest, context: grpc.ServicerContext) -> jpb.CreateJobResponse:
        if request.pipeline_id or request.depends_on:
            context.abort(grpc.StatusCode.UNIMPLEMENTED,
                          "CreateJob makes a one-job run; a job joins a pipeline (and depends on its jobs) in the "
                          "pipeline's document: CreatePipeline with the new source")
        artifacts = None
        if request.HasField("artifacts") and request.artifacts.paths:
            artifacts = {"paths": list(request.artifacts.paths), "expire_in": request.artifacts.expire_in or "30d",
                         **({"when": "always"} if request.artifacts.when_failed else {})}
        fields = {"name": request.name, "commands": list(request.commands), "env": dict(request.env),
                  "stage": request.stage, "workspace": request.workspace, "timeout": request.timeout_seconds,
                  "image": request.image, "secrets": list(request.secrets), "artifacts": artifacts,
                  "allow_failure": request.allow_failure, "retry_count": request.retry_count,
                  "label_selector": _selector_in(request.label_selector)}

        def create() -> jpb.CreateJobResponse:
            made = jobs.create(self.store, self.config, fields)
            view = jobs.get(self.store, made["id"])
            return jpb.CreateJobResponse(success=True, message=f"queued as run {made['run_id']}", job_id=made["id"],
                                         job=job_detail(view))

        return _guard(context, create)

    def GetJob(self, request: jpb.GetJobRequest, context: grpc.ServicerContext) -> jpb.GetJobResponse:
        view = _guard(context, lambda: jobs.get(self.store, request.job_id))
        return jpb.GetJobResponse(success=True, job=job_detail(view))

    def ListJobs(self, request: jpb.ListJobsRequest, context: grpc.ServicerContext) -> jpb.ListJobsResponse:
        page, size = _page(request.page, context)
        state = _STATE_OF.get(request.status) if request.status else None
        sort = {"status": "state"}.get(request.page.sort_by, request.page.sort_by)

        def listed() -> dict[str, Any]:
            common: dict[str, Any] = {"run": request.run_id or None, "state": state,
                                      "executor": request.agent_id or None,
                                      "sort_by": sort, "sort_desc": request.page.sort_desc or not request.page.sort_by}
            if not request.pipeline_id:
                return jobs.list_jobs(self.store, page=page, page_size=size, **common)
            # by pipeline: filter the whole (bounded) listing, then page it
            items = jobs.list_jobs(self.store, page=1, page_size=service.MAX_PAGE_SIZE, **common)["items"]
            items = [v for v in items if v["pipeline"] == request.pipeline_id]
            return {"items": items[(page - 1) * size:page * size], "total": len(items)}

        found = _guard(context, listed)
        return jpb.ListJobsResponse(success=True, jobs=[job_detail(v) for v in found["items"]],
                                    page=jpb.PageInfo(total=found["total"], page=page, page_size=size))

    def UpdateJob(self, request: jpb.UpdateJobRequest, context: grpc.ServicerContext) -> jpb.UpdateJobResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "a job's definition is stored with its run and not edited; CancelJob and CreateJob again "
                      "(or change the stored pipeline with CreatePipeline)")
        raise AssertionError("unreachable")

    def DeleteJob(self, request: jpb.DeleteJobRequest, context: grpc.ServicerContext) -> jpb.DeleteJobResponse:
        def delete() -> str:
            record, graph, _ = jobs.resolve(self.store, request.job_id)
            keys = {jobs.job_key(n) for n in graph.nodes if n.kind == "step"}
            if len(keys) > 1:
                raise StateConflictError(f"run {record.run_id} holds {len(keys)} jobs; a job is deleted with its "
                                         f"run (DELETE /api/v1/runs/{record.run_id})")
            service.delete(self.store, self.config, record.run_id)
            return record.run_id

        run_id = _guard(context, delete)
        return jpb.DeleteJobResponse(success=True, message=f"deleted run {run_id}")

    def CancelJob(self, request: jpb.CancelJobRequest, context: grpc.ServicerContext) -> jpb.CancelJobResponse:
        reason = request.reason or "cancelled through JobService"
        view = _guard(context, lambda: jobs.cancel(self.store, request.job_id, reason))
        return jpb.CancelJobResponse(success=True, message=f"cancel requested for run {view['run_id']} (the engine "
                                                           "cancels runs: every job of it stops)")

    def RetryJob(self, request: jpb.RetryJobRequest, context: grpc.ServicerContext) -> jpb.RetryJobResponse:
        made = _guard(context, lambda: jobs.retry(self.store, request.job_id))
        return jpb.RetryJobResponse(success=True, new_job_id=made["id"],
                                    message=f"run {made['run_id']} queued again as attempt {made['attempt'] + 1} "
                                            "(the job keeps its id; what succeeded is reused)")

    def GetJobLog(self, request: jpb.GetJobLogRequest, context: grpc.ServicerContext) -> jpb.GetJobLogResponse:
        limit = request.limit or 1000
        if not 1 <= limit <= service.MAX_LOG_LIMIT or request.offset < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"offset must be 0 or more and limit between 1 and {service.MAX_LOG_LIMIT}")
        view, lines = _guard(context, lambda: jobs.logs(self.store, request.job_id, offset=request.offset,
                                                         limit=limit + 1))
        names = {n["id"]: n["name"] for n in view["nodes"]}
        chunks = [apb.LogChunk(timestamp_ms=_ms(line.ts), line_number=line.seq, content=line.line,
                               level=apb.LOG_LEVEL_INFO, stream=_STREAMS.get(line.stream, apb.LOG_STREAM_UNSPECIFIED),
                               task_id=line.node, step=names.get(line.node, line.node)) for line in lines[:limit]]
        total = _guard(context, lambda: jobs.count_lines(self.store, request.job_id))
        return jpb.GetJobLogResponse(success=True, logs=chunks, total_lines=total, has_more=len(lines) > limit)

    def ListJobArtifacts(self, request: jpb.ListJobArtifactsRequest,
                         context: grpc.ServicerContext) -> jpb.ListJobArtifactsResponse:
        found = _guard(context, lambda: jobs.job_artifacts(self.store, request.job_id))
        return jpb.ListJobArtifactsResponse(success=True, artifacts=[
            jpb.Artifact(name=os.path.basename(a["path"]), path=a["path"], size=a["size"],
                         created_at_ms=_ms(a["created_at"]), expire_at_ms=_ms(a.get("expires_at"))) for a in found])

    # -- pipelines ----------------------------------------------------------------------------
    def CreatePipeline(self, request: jpb.CreatePipelineRequest,
                       context: grpc.ServicerContext) -> jpb.CreatePipelineResponse:
        if request.env:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "env is given at TriggerPipeline, or written in the "
                                                            "document's `environment:`")

        def create() -> jpb.CreatePipelineResponse:
            from worldtree.app import pipelines

            made = pipelines.create(self.store, request.source, request.name or None)
            return jpb.CreatePipelineResponse(success=True, pipeline_id=made["name"], pipeline=_pipeline(made))

        return _guard(context, create)

    def GetPipeline(self, request: jpb.GetPipelineRequest, context: grpc.ServicerContext) -> jpb.GetPipelineResponse:
        def get() -> jpb.PipelineDetail:
            from worldtree.app import pipelines

            return _pipeline(pipelines.get(self.store, request.pipeline_id))

        return jpb.GetPipelineResponse(success=True, pipeline=_guard(context, get))

    def ListPipelines(self, request: jpb.ListPipelinesRequest,
                      context: grpc.ServicerContext) -> jpb.ListPipelinesResponse:
        page, size = _page(request.page, context)

        def listed() -> dict[str, Any]:
            from worldtree.app import pipelines

            if not request.name:
                return pipelines.list_pipelines(self.store, page=page, page_size=size)
            # by name: filter the stored pipelines (at most NAME_SCAN_PAGES pages), then page what matched;
            # filtering one page afterwards gave empty pages and the unfiltered total
            matched: list[dict[str, Any]] = []
            for number in range(1, NAME_SCAN_PAGES + 1):
                batch = pipelines.list_pipelines(self.store, page=number, page_size=service.MAX_PAGE_SIZE)
                matched += [i for i in batch["items"] if request.name in i["name"]]
                if number * service.MAX_PAGE_SIZE >= batch["total"]:
                    break
            return {"items": matched[(page - 1) * size:page * size], "total": len(matched)}

        found = _guard(context, listed)
        items = found["items"]
        return jpb.ListPipelinesResponse(
            success=True, page=jpb.PageInfo(total=found["total"], page=page, page_size=size),
            pipelines=[jpb.PipelineDetail(pipeline_id=i["name"], name=i["name"], created_at_ms=_ms(i["created_at"]),
                                          updated_at_ms=_ms(i["updated_at"])) for i in items])

    def TriggerPipeline(self, request: jpb.TriggerPipelineRequest,
                        context: grpc.ServicerContext) -> jpb.TriggerPipelineResponse:
        def trigger() -> dict[str, Any]:
            from worldtree.app import pipelines

            return pipelines.trigger(self.store, self.config, request.pipeline_id,
                                     env={**dict(request.params), **dict(request.env)})

        made = _guard(context, trigger)
        return jpb.TriggerPipelineResponse(success=True, run_id=made["id"], message=f"run {made['id']} queued")

    def StopPipeline(self, request: jpb.StopPipelineRequest, context: grpc.ServicerContext) -> jpb.StopPipelineResponse:
        """``run_id`` names a run (cancelled), or a stored pipeline (all its queued and running runs)."""
        reason = request.reason or "stopped through JobService"

        def stop() -> str:
            try:
                service.cancel(self.store, request.run_id, reason)
                return f"cancel requested for run {request.run_id}"
            except NotFoundError:
                from worldtree.app import pipelines

                stopped = pipelines.stop(self.store, request.run_id, reason)
                return f"cancel requested for {len(stopped['cancelled'])} run(s) of pipeline {request.run_id}"

        return jpb.StopPipelineResponse(success=True, message=_guard(context, stop))


def _pipeline(view: dict[str, Any]) -> jpb.PipelineDetail:
    """A stored pipeline of :mod:`worldtree.app.pipelines` as PipelineDetail."""
    from worldtree.app import pipelines

    graph = pipelines.check(view["document"], f"pipelines/{view['name']}")
    stages: dict[str, list[str]] = {}
    for n in graph.nodes:
        if n.kind == "step":
            jobs_of = stages.setdefault(n.stage or "", [])
            if n.job not in jobs_of:
                jobs_of.append(n.job)
    counts = view.get("runs_by_state") or {}
    last = view.get("last_run") or {}
    return jpb.PipelineDetail(
        pipeline_id=view["name"], name=view["name"], source=view["document"], env=view.get("env") or {},
        stages=[jpb.Stage(name=s, jobs=j) for s, j in stages.items()], trigger=jpb.TRIGGER_TYPE_API,
        status=_STATUS.get(last.get("state", ""), apb.JOB_STATUS_UNSPECIFIED), last_run_id=last.get("id", ""),
        stats=jpb.PipelineStats(total_runs=sum(counts.values()), success_runs=counts.get("succeeded", 0),
                                failed_runs=counts.get("failed", 0)),
        created_at_ms=_ms(view["created_at"]), updated_at_ms=_ms(view["updated_at"]))


def _data_dir(store: RunStore) -> Path:
    """The server's data directory: where its artifacts live (``<data dir>/artifacts``, set at start)."""
    try:
        from worldtree.app.artifacts import artifacts_root
    except ImportError:
        return Path.cwd() / ".worldtree"
    return artifacts_root(store).parent


def add_to_server(server: grpc.Server, store: RunStore, config: ServiceConfig | None = None) -> None:
    """Mount JobService on ``server`` (called by ``grpc_server.start``)."""
    job_pb2_grpc.add_JobServiceServicer_to_server(JobService(store, config), server)
