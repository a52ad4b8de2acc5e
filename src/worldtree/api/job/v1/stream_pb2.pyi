from worldtree.api.agent.v1 import agent_pb2 as _agent_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_JOB_CREATED: _ClassVar[EventType]
    EVENT_TYPE_JOB_STARTED: _ClassVar[EventType]
    EVENT_TYPE_JOB_COMPLETED: _ClassVar[EventType]
    EVENT_TYPE_JOB_FAILED: _ClassVar[EventType]
    EVENT_TYPE_JOB_CANCELLED: _ClassVar[EventType]
    EVENT_TYPE_PIPELINE_STARTED: _ClassVar[EventType]
    EVENT_TYPE_PIPELINE_COMPLETED: _ClassVar[EventType]
    EVENT_TYPE_PIPELINE_FAILED: _ClassVar[EventType]
    EVENT_TYPE_PIPELINE_CANCELLED: _ClassVar[EventType]
    EVENT_TYPE_AGENT_REGISTERED: _ClassVar[EventType]
    EVENT_TYPE_AGENT_UNREGISTERED: _ClassVar[EventType]
    EVENT_TYPE_AGENT_OFFLINE: _ClassVar[EventType]
    EVENT_TYPE_AGENT_ONLINE: _ClassVar[EventType]
    EVENT_TYPE_STEP_STARTED: _ClassVar[EventType]
    EVENT_TYPE_STEP_COMPLETED: _ClassVar[EventType]
    EVENT_TYPE_STEP_FAILED: _ClassVar[EventType]
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_JOB_CREATED: EventType
EVENT_TYPE_JOB_STARTED: EventType
EVENT_TYPE_JOB_COMPLETED: EventType
EVENT_TYPE_JOB_FAILED: EventType
EVENT_TYPE_JOB_CANCELLED: EventType
EVENT_TYPE_PIPELINE_STARTED: EventType
EVENT_TYPE_PIPELINE_COMPLETED: EventType
EVENT_TYPE_PIPELINE_FAILED: EventType
EVENT_TYPE_PIPELINE_CANCELLED: EventType
EVENT_TYPE_AGENT_REGISTERED: EventType
EVENT_TYPE_AGENT_UNREGISTERED: EventType
EVENT_TYPE_AGENT_OFFLINE: EventType
EVENT_TYPE_AGENT_ONLINE: EventType
EVENT_TYPE_STEP_STARTED: EventType
EVENT_TYPE_STEP_COMPLETED: EventType
EVENT_TYPE_STEP_FAILED: EventType

class Event(_message.Message):
    __slots__ = ("type", "resource_type", "resource_id", "timestamp_ms", "message", "data")
    class DataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    type: EventType
    resource_type: str
    resource_id: str
    timestamp_ms: int
    message: str
    data: _containers.ScalarMap[str, str]
    def __init__(self, type: _Optional[_Union[EventType, str]] = ..., resource_type: _Optional[str] = ..., resource_id: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., message: _Optional[str] = ..., data: _Optional[_Mapping[str, str]] = ...) -> None: ...

class StreamJobLogRequest(_message.Message):
    __slots__ = ("job_id", "from_line", "follow")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_LINE_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    from_line: int
    follow: bool
    def __init__(self, job_id: _Optional[str] = ..., from_line: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class StreamJobLogResponse(_message.Message):
    __slots__ = ("logs", "finished")
    LOGS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    logs: _containers.RepeatedCompositeFieldContainer[_agent_pb2.LogChunk]
    finished: bool
    def __init__(self, logs: _Optional[_Iterable[_Union[_agent_pb2.LogChunk, _Mapping]]] = ..., finished: _Optional[bool] = ...) -> None: ...

class UploadJobLogRequest(_message.Message):
    __slots__ = ("agent_id", "job_id", "lease_token", "logs")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    job_id: str
    lease_token: int
    logs: _containers.RepeatedCompositeFieldContainer[_agent_pb2.LogChunk]
    def __init__(self, agent_id: _Optional[str] = ..., job_id: _Optional[str] = ..., lease_token: _Optional[int] = ..., logs: _Optional[_Iterable[_Union[_agent_pb2.LogChunk, _Mapping]]] = ...) -> None: ...

class UploadJobLogResponse(_message.Message):
    __slots__ = ("success", "message", "acked_line_number", "lines_received")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ACKED_LINE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    LINES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    acked_line_number: int
    lines_received: int
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., acked_line_number: _Optional[int] = ..., lines_received: _Optional[int] = ...) -> None: ...

class StreamJobStatusRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class StreamJobStatusResponse(_message.Message):
    __slots__ = ("job_id", "status", "agent_id", "message", "timestamp_ms")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: _agent_pb2.JobStatus
    agent_id: str
    message: str
    timestamp_ms: int
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[_agent_pb2.JobStatus, str]] = ..., agent_id: _Optional[str] = ..., message: _Optional[str] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class StreamPipelineStatusRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class StreamPipelineStatusResponse(_message.Message):
    __slots__ = ("run_id", "status", "job_states", "timestamp_ms")
    class JobStatesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    JOB_STATES_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    status: _agent_pb2.JobStatus
    job_states: _containers.ScalarMap[str, str]
    timestamp_ms: int
    def __init__(self, run_id: _Optional[str] = ..., status: _Optional[_Union[_agent_pb2.JobStatus, str]] = ..., job_states: _Optional[_Mapping[str, str]] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class StreamAgentStatusRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class StreamAgentStatusResponse(_message.Message):
    __slots__ = ("agent", "timestamp_ms")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    agent: _agent_pb2.Agent
    timestamp_ms: int
    def __init__(self, agent: _Optional[_Union[_agent_pb2.Agent, _Mapping]] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("event_types", "resource_ids", "resource_type")
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_IDS_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    event_types: _containers.RepeatedScalarFieldContainer[EventType]
    resource_ids: _containers.RepeatedScalarFieldContainer[str]
    resource_type: str
    def __init__(self, event_types: _Optional[_Iterable[_Union[EventType, str]]] = ..., resource_ids: _Optional[_Iterable[str]] = ..., resource_type: _Optional[str] = ...) -> None: ...

class StreamEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: Event
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class AgentHello(_message.Message):
    __slots__ = ("agent_id", "protocol_version", "leases", "last_line_numbers")
    class LastLineNumbersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    LAST_LINE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    protocol_version: _agent_pb2.ProtocolVersion
    leases: _containers.RepeatedCompositeFieldContainer[_agent_pb2.JobLease]
    last_line_numbers: _containers.ScalarMap[str, int]
    def __init__(self, agent_id: _Optional[str] = ..., protocol_version: _Optional[_Union[_agent_pb2.ProtocolVersion, str]] = ..., leases: _Optional[_Iterable[_Union[_agent_pb2.JobLease, _Mapping]]] = ..., last_line_numbers: _Optional[_Mapping[str, int]] = ...) -> None: ...

class AgentChannelRequest(_message.Message):
    __slots__ = ("hello", "heartbeat", "status", "log_data", "fetch", "metrics")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOG_DATA_FIELD_NUMBER: _ClassVar[int]
    FETCH_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    hello: AgentHello
    heartbeat: _agent_pb2.HeartbeatRequest
    status: _agent_pb2.ReportJobStatusRequest
    log_data: _agent_pb2.ReportJobLogRequest
    fetch: _agent_pb2.FetchJobRequest
    metrics: _agent_pb2.AgentMetrics
    def __init__(self, hello: _Optional[_Union[AgentHello, _Mapping]] = ..., heartbeat: _Optional[_Union[_agent_pb2.HeartbeatRequest, _Mapping]] = ..., status: _Optional[_Union[_agent_pb2.ReportJobStatusRequest, _Mapping]] = ..., log_data: _Optional[_Union[_agent_pb2.ReportJobLogRequest, _Mapping]] = ..., fetch: _Optional[_Union[_agent_pb2.FetchJobRequest, _Mapping]] = ..., metrics: _Optional[_Union[_agent_pb2.AgentMetrics, _Mapping]] = ...) -> None: ...

class CancelCommand(_message.Message):
    __slots__ = ("job_id", "task_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    task_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ConfigUpdate(_message.Message):
    __slots__ = ("heartbeat_interval_seconds", "max_concurrent", "lease_seconds")
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval_seconds: float
    max_concurrent: int
    lease_seconds: float
    def __init__(self, heartbeat_interval_seconds: _Optional[float] = ..., max_concurrent: _Optional[int] = ..., lease_seconds: _Optional[float] = ...) -> None: ...

class StatusAck(_message.Message):
    __slots__ = ("job_id", "task_id", "accepted", "message")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    task_id: str
    accepted: bool
    message: str
    def __init__(self, job_id: _Optional[str] = ..., task_id: _Optional[str] = ..., accepted: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class LogAck(_message.Message):
    __slots__ = ("job_id", "acked_line_number", "accepted", "message")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ACKED_LINE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    acked_line_number: int
    accepted: bool
    message: str
    def __init__(self, job_id: _Optional[str] = ..., acked_line_number: _Optional[int] = ..., accepted: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class AgentChannelResponse(_message.Message):
    __slots__ = ("heartbeat_ack", "assignment", "cancel_command", "config_update", "status_ack", "log_ack")
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_COMMAND_FIELD_NUMBER: _ClassVar[int]
    CONFIG_UPDATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_ACK_FIELD_NUMBER: _ClassVar[int]
    LOG_ACK_FIELD_NUMBER: _ClassVar[int]
    heartbeat_ack: _agent_pb2.HeartbeatResponse
    assignment: _agent_pb2.FetchJobResponse
    cancel_command: CancelCommand
    config_update: ConfigUpdate
    status_ack: StatusAck
    log_ack: LogAck
    def __init__(self, heartbeat_ack: _Optional[_Union[_agent_pb2.HeartbeatResponse, _Mapping]] = ..., assignment: _Optional[_Union[_agent_pb2.FetchJobResponse, _Mapping]] = ..., cancel_command: _Optional[_Union[CancelCommand, _Mapping]] = ..., config_update: _Optional[_Union[ConfigUpdate, _Mapping]] = ..., status_ack: _Optional[_Union[StatusAck, _Mapping]] = ..., log_ack: _Optional[_Union[LogAck, _Mapping]] = ...) -> None: ...
