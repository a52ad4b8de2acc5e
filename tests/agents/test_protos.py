"""The checked-in gRPC stubs are what scripts/gen-protos.sh makes from api/**/*.proto today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tree(base: Path) -> dict[str, str]:
    return {str(p.relative_to(base)): p.read_text(encoding="utf-8")
            for p in sorted(base.rglob("*")) if p.is_file() and p.suffix in {".py", ".pyi"}}


def test_checked_in_stubs_match_the_protos(tmp_path: Path) -> None:
    subprocess.run([str(ROOT / "scripts" / "gen-protos.sh"), str(tmp_path)], check=True,
                   env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    built, checked_in = _tree(tmp_path / "api"), _tree(ROOT / "src" / "worldtree" / "api")
    assert sorted(built) == sorted(checked_in)
    stale = [name for name in built if built[name] != checked_in[name]]
    assert not stale, f"stubs differ from the protos: {stale}; run scripts/gen-protos.sh"


def test_services_and_messages_are_named_as_the_issue_says() -> None:
    from worldtree.api.agent.v1 import agent_pb2
    from worldtree.api.job.v1 import job_pb2, stream_pb2

    def rpcs(module: object, service: str) -> list[str]:
        desc = module.DESCRIPTOR.services_by_name[service]  # type: ignore[attr-defined]
        for method in desc.methods:
            assert method.input_type.name == f"{method.name}Request"
            assert method.output_type.name == f"{method.name}Response"
        return [m.name for m in desc.methods]

    assert rpcs(agent_pb2, "AgentService") == ["Register", "Unregister", "Heartbeat", "UpdateLabels", "FetchJob",
                                               "ReportJobStatus", "ReportJobLog", "CancelJob", "UploadArtifact",
                                               "DownloadArtifacts"]
    assert rpcs(job_pb2, "JobService") == [
        "CreateJob", "GetJob", "ListJobs", "UpdateJob", "DeleteJob", "CancelJob", "RetryJob", "GetJobLog",
        "ListJobArtifacts", "CreatePipeline", "GetPipeline", "ListPipelines", "TriggerPipeline", "StopPipeline"]
    assert rpcs(stream_pb2, "StreamService") == [
        "StreamJobLog", "UploadJobLog", "StreamJobStatus", "StreamPipelineStatus", "StreamAgentStatus",
        "AgentChannel", "StreamEvents"]
    assert {v.name for v in agent_pb2.JobStatus.DESCRIPTOR.values} >= {
        f"JOB_STATUS_{s}"
        for s in ["PENDING", "QUEUED", "RUNNING", "SUCCESS", "FAILED", "CANCELLED", "TIMEOUT", "SKIPPED"]}
    assert {v.name for v in stream_pb2.EventType.DESCRIPTOR.values} >= {
        "EVENT_TYPE_AGENT_REGISTERED", "EVENT_TYPE_AGENT_UNREGISTERED", "EVENT_TYPE_AGENT_OFFLINE"}
