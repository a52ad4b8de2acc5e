from worldtree.api.agent.v1 import agent_pb2 as _agent_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TriggerType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIGGER_TYPE_UNSPECIFIED: _ClassVar[TriggerType]
    TRIGGER_TYPE_MANUAL: _ClassVar[TriggerType]
    TRIGGER_TYPE_CRON: _ClassVar[TriggerType]
    TRIGGER_TYPE_EVENT: _ClassVar[TriggerType]
    TRIGGER_TYPE_API: _ClassVar[TriggerType]
TRIGGER_TYPE_UNSPECIFIED: TriggerType
TRIGGER_TYPE_MANUAL: TriggerType
TRIGGER_TYPE_CRON: TriggerType
TRIGGER_TYPE_EVENT: TriggerType
TRIGGER_TYPE_API: TriggerType

class PageRequest(_message.Message):
    __slots__ = ("page", "page_size", "sort_by", "sort_desc")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SORT_BY_FIELD_NUMBER: _ClassVar[int]
    SORT_DESC_FIELD_NUMBER: _ClassVar[int]
    page: int
    page_size: int
    sort_by: str
    sort_desc: bool
    def __init__(self, page: _Optional[int] = ..., page_size: _Optional[int] = ..., sort_by: _Optional[str] = ..., sort_desc: _Optional[bool] = ...) -> None: ...

class PageInfo(_message.Message):
    __slots__ = ("total", "page", "page_size")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    total: int
    page: int
    page_size: int
    def __init__(self, total: _Optional[int] = ..., page: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class ArtifactConfig(_message.Message):
    __slots__ = ("paths", "expire_in", "name", "when_failed")
    PATHS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_IN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    WHEN_FAILED_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    expire_in: str
    name: str
    when_failed: bool
    def __init__(self, paths: _Optional[_Iterable[str]] = ..., expire_in: _Optional[str] = ..., name: _Optional[str] = ..., when_failed: _Optional[bool] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("name", "path", "size", "download_url", "created_at_ms", "expire_at_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_URL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    size: int
    download_url: str
    created_at_ms: int
    expire_at_ms: int
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., size: _Optional[int] = ..., download_url: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., expire_at_ms: _Optional[int] = ...) -> None: ...

class StepDetail(_message.Message):
    __slots__ = ("name", "status", "exit_code", "tries", "message", "started_at_ms", "finished_at_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    TRIES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: _agent_pb2.JobStatus
    exit_code: int
    tries: int
    message: str
    started_at_ms: int
    finished_at_ms: int
    def __init__(self, name: _Optional[str] = ..., status: _Optional[_Union[_agent_pb2.JobStatus, str]] = ..., exit_code: _Optional[int] = ..., tries: _Optional[int] = ..., message: _Optional[str] = ..., started_at_ms: _Optional[int] = ..., finished_at_ms: _Optional[int] = ...) -> None: ...

class JobDetail(_message.Message):
    __slots__ = ("job_id", "name", "run_id", "pipeline_id", "stage", "status", "commands", "env", "image", "timeout_seconds", "depends_on", "allow_failure", "retry_count", "label_selector", "agent_id", "exit_code", "attempt", "created_at_ms", "started_at_ms", "finished_at_ms", "message", "steps", "artifacts")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    ALLOW_FAILURE_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    run_id: str
    pipeline_id: str
    stage: str
    status: _agent_pb2.JobStatus
    commands: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    image: str
    timeout_seconds: int
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    allow_failure: bool
    retry_count: int
    label_selector: _agent_pb2.LabelSelector
    agent_id: str
    exit_code: int
    attempt: int
    created_at_ms: int
    started_at_ms: int
    finished_at_ms: int
    message: str
    steps: _containers.RepeatedCompositeFieldContainer[StepDetail]
    artifacts: ArtifactConfig
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ..., run_id: _Optional[str] = ..., pipeline_id: _Optional[str] = ..., stage: _Optional[str] = ..., status: _Optional[_Union[_agent_pb2.JobStatus, str]] = ..., commands: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., image: _Optional[str] = ..., timeout_seconds: _Optional[int] = ..., depends_on: _Optional[_Iterable[str]] = ..., allow_failure: _Optional[bool] = ..., retry_count: _Optional[int] = ..., label_selector: _Optional[_Union[_agent_pb2.LabelSelector, _Mapping]] = ..., agent_id: _Optional[str] = ..., exit_code: _Optional[int] = ..., attempt: _Optional[int] = ..., created_at_ms: _Optional[int] = ..., started_at_ms: _Optional[int] = ..., finished_at_ms: _Optional[int] = ..., message: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[StepDetail, _Mapping]]] = ..., artifacts: _Optional[_Union[ArtifactConfig, _Mapping]] = ...) -> None: ...

class Stage(_message.Message):
    __slots__ = ("name", "jobs", "approval")
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    jobs: _containers.RepeatedScalarFieldContainer[str]
    approval: bool
    def __init__(self, name: _Optional[str] = ..., jobs: _Optional[_Iterable[str]] = ..., approval: _Optional[bool] = ...) -> None: ...

class PipelineStats(_message.Message):
    __slots__ = ("total_runs", "success_runs", "failed_runs", "avg_duration_seconds")
    TOTAL_RUNS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RUNS_FIELD_NUMBER: _ClassVar[int]
    FAILED_RUNS_FIELD_NUMBER: _ClassVar[int]
    AVG_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    total_runs: int
    success_runs: int
    failed_runs: int
    avg_duration_seconds: float
    def __init__(self, total_runs: _Optional[int] = ..., success_runs: _Optional[int] = ..., failed_runs: _Optional[int] = ..., avg_duration_seconds: _Optional[float] = ...) -> None: ...

class PipelineDetail(_message.Message):
    __slots__ = ("pipeline_id", "name", "description", "stages", "env", "trigger", "status", "source", "stats", "created_at_ms", "updated_at_ms", "last_run_id")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    name: str
    description: str
    stages: _containers.RepeatedCompositeFieldContainer[Stage]
    env: _containers.ScalarMap[str, str]
    trigger: TriggerType
    status: _agent_pb2.JobStatus
    source: str
    stats: PipelineStats
    created_at_ms: int
    updated_at_ms: int
    last_run_id: str
    def __init__(self, pipeline_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., stages: _Optional[_Iterable[_Union[Stage, _Mapping]]] = ..., env: _Optional[_Mapping[str, str]] = ..., trigger: _Optional[_Union[TriggerType, str]] = ..., status: _Optional[_Union[_agent_pb2.JobStatus, str]] = ..., source: _Optional[str] = ..., stats: _Optional[_Union[PipelineStats, _Mapping]] = ..., created_at_ms: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., last_run_id: _Optional[str] = ...) -> None: ...

class CreateJobRequest(_message.Message):
    __slots__ = ("name", "pipeline_id", "stage", "commands", "env", "workspace", "timeout_seconds", "image", "secrets", "artifacts", "depends_on", "allow_failure", "retry_count", "label_selector")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    ALLOW_FAILURE_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    pipeline_id: str
    stage: str
    commands: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    workspace: str
    timeout_seconds: int
    image: str
    secrets: _containers.RepeatedScalarFieldContainer[str]
    artifacts: ArtifactConfig
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    allow_failure: bool
    retry_count: int
    label_selector: _agent_pb2.LabelSelector
    def __init__(self, name: _Optional[str] = ..., pipeline_id: _Optional[str] = ..., stage: _Optional[str] = ..., commands: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., workspace: _Optional[str] = ..., timeout_seconds: _Optional[int] = ..., image: _Optional[str] = ..., secrets: _Optional[_Iterable[str]] = ..., artifacts: _Optional[_Union[ArtifactConfig, _Mapping]] = ..., depends_on: _Optional[_Iterable[str]] = ..., allow_failure: _Optional[bool] = ..., retry_count: _Optional[int] = ..., label_selector: _Optional[_Union[_agent_pb2.LabelSelector, _Mapping]] = ...) -> None: ...

class CreateJobResponse(_message.Message):
    __slots__ = ("success", "message", "job_id", "job")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    job_id: str
    job: JobDetail
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., job_id: _Optional[str] = ..., job: _Optional[_Union[JobDetail, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("success", "message", "job")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    job: JobDetail
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., job: _Optional[_Union[JobDetail, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page", "pipeline_id", "run_id", "status", "agent_id")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    page: PageRequest
    pipeline_id: str
    run_id: str
    status: _agent_pb2.JobStatus
    agent_id: str
    def __init__(self, page: _Optional[_Union[PageRequest, _Mapping]] = ..., pipeline_id: _Optional[str] = ..., run_id: _Optional[str] = ..., status: _Optional[_Union[_agent_pb2.JobStatus, str]] = ..., agent_id: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("success", "message", "jobs", "page")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    jobs: _containers.RepeatedCompositeFieldContainer[JobDetail]
    page: PageInfo
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., jobs: _Optional[_Iterable[_Union[JobDetail, _Mapping]]] = ..., page: _Optional[_Union[PageInfo, _Mapping]] = ...) -> None: ...

class UpdateJobRequest(_message.Message):
    __slots__ = ("job_id", "env", "timeout_seconds", "label_selector", "retry_count")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    env: _containers.ScalarMap[str, str]
    timeout_seconds: int
    label_selector: _agent_pb2.LabelSelector
    retry_count: int
    def __init__(self, job_id: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., timeout_seconds: _Optional[int] = ..., label_selector: _Optional[_Union[_agent_pb2.LabelSelector, _Mapping]] = ..., retry_count: _Optional[int] = ...) -> None: ...

class UpdateJobResponse(_message.Message):
    __slots__ = ("success", "message", "job")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    job: JobDetail
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., job: _Optional[_Union[JobDetail, _Mapping]] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ("success", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("success", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class RetryJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class RetryJobResponse(_message.Message):
    __slots__ = ("success", "message", "new_job_id")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NEW_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    new_job_id: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., new_job_id: _Optional[str] = ...) -> None: ...

class GetJobLogRequest(_message.Message):
    __slots__ = ("job_id", "offset", "limit")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    offset: int
    limit: int
    def __init__(self, job_id: _Optional[str] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class GetJobLogResponse(_message.Message):
    __slots__ = ("success", "message", "logs", "total_lines", "has_more")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_LINES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    logs: _containers.RepeatedCompositeFieldContainer[_agent_pb2.LogChunk]
    total_lines: int
    has_more: bool
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., logs: _Optional[_Iterable[_Union[_agent_pb2.LogChunk, _Mapping]]] = ..., total_lines: _Optional[int] = ..., has_more: _Optional[bool] = ...) -> None: ...

class ListJobArtifactsRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobArtifactsResponse(_message.Message):
    __slots__ = ("success", "message", "artifacts")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ...) -> None: ...

class CreatePipelineRequest(_message.Message):
    __slots__ = ("name", "description", "source", "env")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    source: str
    env: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., source: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreatePipelineResponse(_message.Message):
    __slots__ = ("success", "message", "pipeline_id", "pipeline")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    pipeline_id: str
    pipeline: PipelineDetail
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., pipeline_id: _Optional[str] = ..., pipeline: _Optional[_Union[PipelineDetail, _Mapping]] = ...) -> None: ...

class GetPipelineRequest(_message.Message):
    __slots__ = ("pipeline_id",)
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    def __init__(self, pipeline_id: _Optional[str] = ...) -> None: ...

class GetPipelineResponse(_message.Message):
    __slots__ = ("success", "message", "pipeline")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    pipeline: PipelineDetail
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., pipeline: _Optional[_Union[PipelineDetail, _Mapping]] = ...) -> None: ...

class ListPipelinesRequest(_message.Message):
    __slots__ = ("page", "name")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    page: PageRequest
    name: str
    def __init__(self, page: _Optional[_Union[PageRequest, _Mapping]] = ..., name: _Optional[str] = ...) -> None: ...

class ListPipelinesResponse(_message.Message):
    __slots__ = ("success", "message", "pipelines", "page")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PIPELINES_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    pipelines: _containers.RepeatedCompositeFieldContainer[PipelineDetail]
    page: PageInfo
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., pipelines: _Optional[_Iterable[_Union[PipelineDetail, _Mapping]]] = ..., page: _Optional[_Union[PageInfo, _Mapping]] = ...) -> None: ...

class TriggerPipelineRequest(_message.Message):
    __slots__ = ("pipeline_id", "env", "params", "trigger")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    env: _containers.ScalarMap[str, str]
    params: _containers.ScalarMap[str, str]
    trigger: TriggerType
    def __init__(self, pipeline_id: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., params: _Optional[_Mapping[str, str]] = ..., trigger: _Optional[_Union[TriggerType, str]] = ...) -> None: ...

class TriggerPipelineResponse(_message.Message):
    __slots__ = ("success", "message", "run_id")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    run_id: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class StopPipelineRequest(_message.Message):
    __slots__ = ("run_id", "reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    reason: str
    def __init__(self, run_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StopPipelineResponse(_message.Message):
    __slots__ = ("success", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...
