from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProtocolVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTOCOL_VERSION_UNSPECIFIED: _ClassVar[ProtocolVersion]
    PROTOCOL_VERSION_V1: _ClassVar[ProtocolVersion]

class AgentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_STATUS_UNSPECIFIED: _ClassVar[AgentStatus]
    AGENT_STATUS_ONLINE: _ClassVar[AgentStatus]
    AGENT_STATUS_OFFLINE: _ClassVar[AgentStatus]
    AGENT_STATUS_BUSY: _ClassVar[AgentStatus]
    AGENT_STATUS_IDLE: _ClassVar[AgentStatus]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_PENDING: _ClassVar[JobStatus]
    JOB_STATUS_QUEUED: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_SUCCESS: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_CANCELLED: _ClassVar[JobStatus]
    JOB_STATUS_TIMEOUT: _ClassVar[JobStatus]
    JOB_STATUS_SKIPPED: _ClassVar[JobStatus]

class LabelOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LABEL_OPERATOR_UNSPECIFIED: _ClassVar[LabelOperator]
    LABEL_OPERATOR_IN: _ClassVar[LabelOperator]
    LABEL_OPERATOR_NOT_IN: _ClassVar[LabelOperator]
    LABEL_OPERATOR_EXISTS: _ClassVar[LabelOperator]
    LABEL_OPERATOR_NOT_EXISTS: _ClassVar[LabelOperator]
    LABEL_OPERATOR_GT: _ClassVar[LabelOperator]
    LABEL_OPERATOR_LT: _ClassVar[LabelOperator]

class LogLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_LEVEL_UNSPECIFIED: _ClassVar[LogLevel]
    LOG_LEVEL_DEBUG: _ClassVar[LogLevel]
    LOG_LEVEL_INFO: _ClassVar[LogLevel]
    LOG_LEVEL_WARN: _ClassVar[LogLevel]
    LOG_LEVEL_ERROR: _ClassVar[LogLevel]

class LogStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_STREAM_UNSPECIFIED: _ClassVar[LogStream]
    LOG_STREAM_STDOUT: _ClassVar[LogStream]
    LOG_STREAM_STDERR: _ClassVar[LogStream]
    LOG_STREAM_SYSTEM: _ClassVar[LogStream]
PROTOCOL_VERSION_UNSPECIFIED: ProtocolVersion
PROTOCOL_VERSION_V1: ProtocolVersion
AGENT_STATUS_UNSPECIFIED: AgentStatus
AGENT_STATUS_ONLINE: AgentStatus
AGENT_STATUS_OFFLINE: AgentStatus
AGENT_STATUS_BUSY: AgentStatus
AGENT_STATUS_IDLE: AgentStatus
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_PENDING: JobStatus
JOB_STATUS_QUEUED: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_SUCCESS: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_CANCELLED: JobStatus
JOB_STATUS_TIMEOUT: JobStatus
JOB_STATUS_SKIPPED: JobStatus
LABEL_OPERATOR_UNSPECIFIED: LabelOperator
LABEL_OPERATOR_IN: LabelOperator
LABEL_OPERATOR_NOT_IN: LabelOperator
LABEL_OPERATOR_EXISTS: LabelOperator
LABEL_OPERATOR_NOT_EXISTS: LabelOperator
LABEL_OPERATOR_GT: LabelOperator
LABEL_OPERATOR_LT: LabelOperator
LOG_LEVEL_UNSPECIFIED: LogLevel
LOG_LEVEL_DEBUG: LogLevel
LOG_LEVEL_INFO: LogLevel
LOG_LEVEL_WARN: LogLevel
LOG_LEVEL_ERROR: LogLevel
LOG_STREAM_UNSPECIFIED: LogStream
LOG_STREAM_STDOUT: LogStream
LOG_STREAM_STDERR: LogStream
LOG_STREAM_SYSTEM: LogStream

class LabelExpression(_message.Message):
    __slots__ = ("key", "operator", "values")
    KEY_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    key: str
    operator: LabelOperator
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key: _Optional[str] = ..., operator: _Optional[_Union[LabelOperator, str]] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class LabelSelector(_message.Message):
    __slots__ = ("match_labels", "match_expressions")
    class MatchLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MATCH_LABELS_FIELD_NUMBER: _ClassVar[int]
    MATCH_EXPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    match_labels: _containers.ScalarMap[str, str]
    match_expressions: _containers.RepeatedCompositeFieldContainer[LabelExpression]
    def __init__(self, match_labels: _Optional[_Mapping[str, str]] = ..., match_expressions: _Optional[_Iterable[_Union[LabelExpression, _Mapping]]] = ...) -> None: ...

class LogChunk(_message.Message):
    __slots__ = ("timestamp_ms", "line_number", "level", "content", "stream", "task_id", "step")
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    LINE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    timestamp_ms: int
    line_number: int
    level: LogLevel
    content: str
    stream: LogStream
    task_id: str
    step: str
    def __init__(self, timestamp_ms: _Optional[int] = ..., line_number: _Optional[int] = ..., level: _Optional[_Union[LogLevel, str]] = ..., content: _Optional[str] = ..., stream: _Optional[_Union[LogStream, str]] = ..., task_id: _Optional[str] = ..., step: _Optional[str] = ...) -> None: ...

class AgentMetrics(_message.Message):
    __slots__ = ("cpu_percent", "memory_percent", "disk_percent", "memory_used_bytes", "memory_total_bytes", "disk_used_bytes", "disk_total_bytes", "load_average")
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    DISK_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISK_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISK_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    LOAD_AVERAGE_FIELD_NUMBER: _ClassVar[int]
    cpu_percent: float
    memory_percent: float
    disk_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    disk_used_bytes: int
    disk_total_bytes: int
    load_average: float
    def __init__(self, cpu_percent: _Optional[float] = ..., memory_percent: _Optional[float] = ..., disk_percent: _Optional[float] = ..., memory_used_bytes: _Optional[int] = ..., memory_total_bytes: _Optional[int] = ..., disk_used_bytes: _Optional[int] = ..., disk_total_bytes: _Optional[int] = ..., load_average: _Optional[float] = ...) -> None: ...

class HostInfo(_message.Message):
    __slots__ = ("hostname", "os", "arch", "cpus", "memory_bytes", "ip", "version")
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    os: str
    arch: str
    cpus: int
    memory_bytes: int
    ip: str
    version: str
    def __init__(self, hostname: _Optional[str] = ..., os: _Optional[str] = ..., arch: _Optional[str] = ..., cpus: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., ip: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class Agent(_message.Message):
    __slots__ = ("agent_id", "name", "status", "labels", "capacity", "running", "host", "metrics", "registered_at_ms", "last_seen_ms", "draining")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_MS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    name: str
    status: AgentStatus
    labels: _containers.ScalarMap[str, str]
    capacity: int
    running: int
    host: HostInfo
    metrics: AgentMetrics
    registered_at_ms: int
    last_seen_ms: int
    draining: bool
    def __init__(self, agent_id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[AgentStatus, str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., capacity: _Optional[int] = ..., running: _Optional[int] = ..., host: _Optional[_Union[HostInfo, _Mapping]] = ..., metrics: _Optional[_Union[AgentMetrics, _Mapping]] = ..., registered_at_ms: _Optional[int] = ..., last_seen_ms: _Optional[int] = ..., draining: _Optional[bool] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("task_id", "job_id", "node_json", "env", "secrets", "try_number", "purpose", "precheck", "timeout_seconds", "commands", "step", "workdir")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_JSON_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    TRY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    PRECHECK_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WORKDIR_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    job_id: str
    node_json: str
    env: _containers.ScalarMap[str, str]
    secrets: _containers.RepeatedScalarFieldContainer[str]
    try_number: int
    purpose: str
    precheck: bool
    timeout_seconds: float
    commands: _containers.RepeatedScalarFieldContainer[str]
    step: str
    workdir: str
    def __init__(self, task_id: _Optional[str] = ..., job_id: _Optional[str] = ..., node_json: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., secrets: _Optional[_Iterable[str]] = ..., try_number: _Optional[int] = ..., purpose: _Optional[str] = ..., precheck: _Optional[bool] = ..., timeout_seconds: _Optional[float] = ..., commands: _Optional[_Iterable[str]] = ..., step: _Optional[str] = ..., workdir: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "run_id", "attempt", "name", "pipeline", "label_selector", "lease_token", "lease_seconds", "status", "workspace", "env", "image", "timeout_seconds", "commands", "graph_json")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    GRAPH_JSON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    run_id: str
    attempt: int
    name: str
    pipeline: str
    label_selector: LabelSelector
    lease_token: int
    lease_seconds: float
    status: JobStatus
    workspace: str
    env: _containers.ScalarMap[str, str]
    image: str
    timeout_seconds: int
    commands: _containers.RepeatedScalarFieldContainer[str]
    graph_json: str
    def __init__(self, job_id: _Optional[str] = ..., run_id: _Optional[str] = ..., attempt: _Optional[int] = ..., name: _Optional[str] = ..., pipeline: _Optional[str] = ..., label_selector: _Optional[_Union[LabelSelector, _Mapping]] = ..., lease_token: _Optional[int] = ..., lease_seconds: _Optional[float] = ..., status: _Optional[_Union[JobStatus, str]] = ..., workspace: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., image: _Optional[str] = ..., timeout_seconds: _Optional[int] = ..., commands: _Optional[_Iterable[str]] = ..., graph_json: _Optional[str] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("protocol_version", "agent_id", "name", "host", "labels", "capacity", "token")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    protocol_version: ProtocolVersion
    agent_id: str
    name: str
    host: HostInfo
    labels: _containers.ScalarMap[str, str]
    capacity: int
    token: str
    def __init__(self, protocol_version: _Optional[_Union[ProtocolVersion, str]] = ..., agent_id: _Optional[str] = ..., name: _Optional[str] = ..., host: _Optional[_Union[HostInfo, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., capacity: _Optional[int] = ..., token: _Optional[str] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("success", "message", "agent_id", "heartbeat_interval_seconds", "labels", "protocol_version", "lease_seconds", "session_secret")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SESSION_SECRET_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    agent_id: str
    heartbeat_interval_seconds: float
    labels: _containers.ScalarMap[str, str]
    protocol_version: ProtocolVersion
    lease_seconds: float
    session_secret: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., agent_id: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[float] = ..., labels: _Optional[_Mapping[str, str]] = ..., protocol_version: _Optional[_Union[ProtocolVersion, str]] = ..., lease_seconds: _Optional[float] = ..., session_secret: _Optional[str] = ...) -> None: ...

class UnregisterRequest(_message.Message):
    __slots__ = ("agent_id", "reason")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    reason: str
    def __init__(self, agent_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UnregisterResponse(_message.Message):
    __slots__ = ("success", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("agent_id", "status", "running", "metrics", "labels", "timestamp_ms", "leases", "draining")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    status: AgentStatus
    running: int
    metrics: AgentMetrics
    labels: _containers.ScalarMap[str, str]
    timestamp_ms: int
    leases: _containers.RepeatedCompositeFieldContainer[JobLease]
    draining: bool
    def __init__(self, agent_id: _Optional[str] = ..., status: _Optional[_Union[AgentStatus, str]] = ..., running: _Optional[int] = ..., metrics: _Optional[_Union[AgentMetrics, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., timestamp_ms: _Optional[int] = ..., leases: _Optional[_Iterable[_Union[JobLease, _Mapping]]] = ..., draining: _Optional[bool] = ...) -> None: ...

class JobLease(_message.Message):
    __slots__ = ("job_id", "lease_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_token: int
    def __init__(self, job_id: _Optional[str] = ..., lease_token: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("success", "message", "revoked_job_ids", "cancel_job_ids", "heartbeat_interval_seconds")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REVOKED_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    revoked_job_ids: _containers.RepeatedScalarFieldContainer[str]
    cancel_job_ids: _containers.RepeatedScalarFieldContainer[str]
    heartbeat_interval_seconds: float
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., revoked_job_ids: _Optional[_Iterable[str]] = ..., cancel_job_ids: _Optional[_Iterable[str]] = ..., heartbeat_interval_seconds: _Optional[float] = ...) -> None: ...

class UpdateLabelsRequest(_message.Message):
    __slots__ = ("agent_id", "labels", "merge")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    labels: _containers.ScalarMap[str, str]
    merge: bool
    def __init__(self, agent_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., merge: _Optional[bool] = ...) -> None: ...

class UpdateLabelsResponse(_message.Message):
    __slots__ = ("success", "message", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class FetchJobRequest(_message.Message):
    __slots__ = ("agent_id", "max_jobs", "wait_seconds", "leases")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_JOBS_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    max_jobs: int
    wait_seconds: float
    leases: _containers.RepeatedCompositeFieldContainer[JobLease]
    def __init__(self, agent_id: _Optional[str] = ..., max_jobs: _Optional[int] = ..., wait_seconds: _Optional[float] = ..., leases: _Optional[_Iterable[_Union[JobLease, _Mapping]]] = ...) -> None: ...

class FetchJobResponse(_message.Message):
    __slots__ = ("success", "message", "jobs", "tasks", "cancel_task_ids", "done_job_ids")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    DONE_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    cancel_task_ids: _containers.RepeatedScalarFieldContainer[str]
    done_job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., cancel_task_ids: _Optional[_Iterable[str]] = ..., done_job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ReportJobStatusRequest(_message.Message):
    __slots__ = ("agent_id", "job_id", "lease_token", "task_id", "status", "exit_code", "error_message", "started_at_ms", "finished_at_ms", "outcome_json")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_JSON_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    job_id: str
    lease_token: int
    task_id: str
    status: JobStatus
    exit_code: int
    error_message: str
    started_at_ms: int
    finished_at_ms: int
    outcome_json: str
    def __init__(self, agent_id: _Optional[str] = ..., job_id: _Optional[str] = ..., lease_token: _Optional[int] = ..., task_id: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., exit_code: _Optional[int] = ..., error_message: _Optional[str] = ..., started_at_ms: _Optional[int] = ..., finished_at_ms: _Optional[int] = ..., outcome_json: _Optional[str] = ...) -> None: ...

class ReportJobStatusResponse(_message.Message):
    __slots__ = ("success", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class ReportJobLogRequest(_message.Message):
    __slots__ = ("agent_id", "job_id", "lease_token", "logs")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    job_id: str
    lease_token: int
    logs: _containers.RepeatedCompositeFieldContainer[LogChunk]
    def __init__(self, agent_id: _Optional[str] = ..., job_id: _Optional[str] = ..., lease_token: _Optional[int] = ..., logs: _Optional[_Iterable[_Union[LogChunk, _Mapping]]] = ...) -> None: ...

class ReportJobLogResponse(_message.Message):
    __slots__ = ("success", "message", "acked_line_number")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ACKED_LINE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    acked_line_number: int
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., acked_line_number: _Optional[int] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("agent_id", "job_id", "task_id", "reason")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    job_id: str
    task_id: str
    reason: str
    def __init__(self, agent_id: _Optional[str] = ..., job_id: _Optional[str] = ..., task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("success", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class UploadArtifactRequest(_message.Message):
    __slots__ = ("agent_id", "job_id", "lease_token", "path", "sha256", "data", "last")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    job_id: str
    lease_token: int
    path: str
    sha256: str
    data: bytes
    last: bool
    def __init__(self, agent_id: _Optional[str] = ..., job_id: _Optional[str] = ..., lease_token: _Optional[int] = ..., path: _Optional[str] = ..., sha256: _Optional[str] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class DownloadArtifactsResponse(_message.Message):
    __slots__ = ("job_id", "path", "sha256", "data", "last")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    path: str
    sha256: str
    data: bytes
    last: bool
    def __init__(self, job_id: _Optional[str] = ..., path: _Optional[str] = ..., sha256: _Optional[str] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class UploadArtifactResponse(_message.Message):
    __slots__ = ("artifact_id", "sha256", "size")
    ARTIFACT_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    artifact_id: str
    sha256: str
    size: int
    def __init__(self, artifact_id: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class DownloadArtifactsRequest(_message.Message):
    __slots__ = ("agent_id", "job_id", "lease_token")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    job_id: str
    lease_token: int
    def __init__(self, agent_id: _Optional[str] = ..., job_id: _Optional[str] = ..., lease_token: _Optional[int] = ...) -> None: ...
