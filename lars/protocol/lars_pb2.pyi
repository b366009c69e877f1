from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageId(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ID_UNKNOWN: _ClassVar[MessageId]
    ID_GetRouteRequest: _ClassVar[MessageId]
    ID_GetRouteResponse: _ClassVar[MessageId]
    ID_ReportStatusRequest: _ClassVar[MessageId]
    ID_GetHostRequest: _ClassVar[MessageId]
    ID_GetHostResponse: _ClassVar[MessageId]
    ID_ReportRequest: _ClassVar[MessageId]
    ID_API_GetRouteRequest: _ClassVar[MessageId]
    ID_API_GetRouteResponse: _ClassVar[MessageId]
    ID_InstanceSync: _ClassVar[MessageId]
    ID_InstanceSyncAck: _ClassVar[MessageId]
    ID_RegisterRequest: _ClassVar[MessageId]
    ID_RegisterResponse: _ClassVar[MessageId]

class LarsRetCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RET_SUCC: _ClassVar[LarsRetCode]
    RET_OVERLOAD: _ClassVar[LarsRetCode]
    RET_SYSTEM_ERROR: _ClassVar[LarsRetCode]
    RET_NOEXIST: _ClassVar[LarsRetCode]
ID_UNKNOWN: MessageId
ID_GetRouteRequest: MessageId
ID_GetRouteResponse: MessageId
ID_ReportStatusRequest: MessageId
ID_GetHostRequest: MessageId
ID_GetHostResponse: MessageId
ID_ReportRequest: MessageId
ID_API_GetRouteRequest: MessageId
ID_API_GetRouteResponse: MessageId
ID_InstanceSync: MessageId
ID_InstanceSyncAck: MessageId
ID_RegisterRequest: MessageId
ID_RegisterResponse: MessageId
RET_SUCC: LarsRetCode
RET_OVERLOAD: LarsRetCode
RET_SYSTEM_ERROR: LarsRetCode
RET_NOEXIST: LarsRetCode

class HostInfo(_message.Message):
    __slots__ = ("ip", "port", "weight")
    IP_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ip: int
    port: int
    weight: int
    def __init__(self, ip: _Optional[int] = ..., port: _Optional[int] = ..., weight: _Optional[int] = ...) -> None: ...

class GetRouteRequest(_message.Message):
    __slots__ = ("modid", "cmdid")
    MODID_FIELD_NUMBER: _ClassVar[int]
    CMDID_FIELD_NUMBER: _ClassVar[int]
    modid: int
    cmdid: int
    def __init__(self, modid: _Optional[int] = ..., cmdid: _Optional[int] = ...) -> None: ...

class GetRouteResponse(_message.Message):
    __slots__ = ("modid", "cmdid", "host", "version", "registrations")
    MODID_FIELD_NUMBER: _ClassVar[int]
    CMDID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REGISTRATIONS_FIELD_NUMBER: _ClassVar[int]
    modid: int
    cmdid: int
    host: _containers.RepeatedCompositeFieldContainer[HostInfo]
    version: int
    registrations: bool
    def __init__(self, modid: _Optional[int] = ..., cmdid: _Optional[int] = ..., host: _Optional[_Iterable[_Union[HostInfo, _Mapping]]] = ..., version: _Optional[int] = ..., registrations: _Optional[bool] = ...) -> None: ...

class HostCallResult(_message.Message):
    __slots__ = ("ip", "port", "succ", "err", "overload")
    IP_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SUCC_FIELD_NUMBER: _ClassVar[int]
    ERR_FIELD_NUMBER: _ClassVar[int]
    OVERLOAD_FIELD_NUMBER: _ClassVar[int]
    ip: int
    port: int
    succ: int
    err: int
    overload: bool
    def __init__(self, ip: _Optional[int] = ..., port: _Optional[int] = ..., succ: _Optional[int] = ..., err: _Optional[int] = ..., overload: _Optional[bool] = ...) -> None: ...

class ReportStatusRequest(_message.Message):
    __slots__ = ("modid", "cmdid", "caller", "results", "ts")
    MODID_FIELD_NUMBER: _ClassVar[int]
    CMDID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    modid: int
    cmdid: int
    caller: int
    results: _containers.RepeatedCompositeFieldContainer[HostCallResult]
    ts: int
    def __init__(self, modid: _Optional[int] = ..., cmdid: _Optional[int] = ..., caller: _Optional[int] = ..., results: _Optional[_Iterable[_Union[HostCallResult, _Mapping]]] = ..., ts: _Optional[int] = ...) -> None: ...

class GetHostRequest(_message.Message):
    __slots__ = ("seq", "modid", "cmdid")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MODID_FIELD_NUMBER: _ClassVar[int]
    CMDID_FIELD_NUMBER: _ClassVar[int]
    seq: int
    modid: int
    cmdid: int
    def __init__(self, seq: _Optional[int] = ..., modid: _Optional[int] = ..., cmdid: _Optional[int] = ...) -> None: ...

class GetHostResponse(_message.Message):
    __slots__ = ("seq", "modid", "cmdid", "retcode", "host", "reason")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MODID_FIELD_NUMBER: _ClassVar[int]
    CMDID_FIELD_NUMBER: _ClassVar[int]
    RETCODE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    modid: int
    cmdid: int
    retcode: int
    host: HostInfo
    reason: int
    def __init__(self, seq: _Optional[int] = ..., modid: _Optional[int] = ..., cmdid: _Optional[int] = ..., retcode: _Optional[int] = ..., host: _Optional[_Union[HostInfo, _Mapping]] = ..., reason: _Optional[int] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("modid", "cmdid", "host", "retcode")
    MODID_FIELD_NUMBER: _ClassVar[int]
    CMDID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    RETCODE_FIELD_NUMBER: _ClassVar[int]
    modid: int
    cmdid: int
    host: HostInfo
    retcode: int
    def __init__(self, modid: _Optional[int] = ..., cmdid: _Optional[int] = ..., host: _Optional[_Union[HostInfo, _Mapping]] = ..., retcode: _Optional[int] = ...) -> None: ...

class Instance(_message.Message):
    __slots__ = ("modid", "cmdid", "ip", "port", "check", "passing")
    MODID_FIELD_NUMBER: _ClassVar[int]
    CMDID_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    PASSING_FIELD_NUMBER: _ClassVar[int]
    modid: int
    cmdid: int
    ip: int
    port: int
    check: str
    passing: bool
    def __init__(self, modid: _Optional[int] = ..., cmdid: _Optional[int] = ..., ip: _Optional[int] = ..., port: _Optional[int] = ..., check: _Optional[str] = ..., passing: _Optional[bool] = ...) -> None: ...

class InstanceSync(_message.Message):
    __slots__ = ("agent", "instances", "seq")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    agent: str
    instances: _containers.RepeatedCompositeFieldContainer[Instance]
    seq: int
    def __init__(self, agent: _Optional[str] = ..., instances: _Optional[_Iterable[_Union[Instance, _Mapping]]] = ..., seq: _Optional[int] = ...) -> None: ...

class InstanceSyncAck(_message.Message):
    __slots__ = ("seq", "lease")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    lease: int
    def __init__(self, seq: _Optional[int] = ..., lease: _Optional[int] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("seq", "op", "instance", "interval_ms", "timeout_ms", "fail_after", "pass_after")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    FAIL_AFTER_FIELD_NUMBER: _ClassVar[int]
    PASS_AFTER_FIELD_NUMBER: _ClassVar[int]
    seq: int
    op: int
    instance: Instance
    interval_ms: int
    timeout_ms: int
    fail_after: int
    pass_after: int
    def __init__(self, seq: _Optional[int] = ..., op: _Optional[int] = ..., instance: _Optional[_Union[Instance, _Mapping]] = ..., interval_ms: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., fail_after: _Optional[int] = ..., pass_after: _Optional[int] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("seq", "retcode", "detail")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    RETCODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    seq: int
    retcode: int
    detail: str
    def __init__(self, seq: _Optional[int] = ..., retcode: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...
