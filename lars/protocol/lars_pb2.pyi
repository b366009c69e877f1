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
    __slots__ = ("modid", "cmdid", "host")
    MODID_FIELD_NUMBER: _ClassVar[int]
    CMDID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    modid: int
    cmdid: int
    host: _containers.RepeatedCompositeFieldContainer[HostInfo]
    def __init__(self, modid: _Optional[int] = ..., cmdid: _Optional[int] = ..., host: _Optional[_Iterable[_Union[HostInfo, _Mapping]]] = ...) -> None: ...

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
