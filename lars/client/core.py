"""The sans-I/O core shared by LarsClient and AsyncLarsClient.

It builds the request datagrams of spec section 2 (GetHostRequest, ReportRequest,
API_GetRouteRequest), picks the agent port of spec section 4 and decides whether a
received datagram is the awaited reply. It knows no sockets, loops or clocks: the faces
send the bytes, wait with their own timeout and feed back what arrives.

Matching rules: a GetHostResponse answers a request when its seq, modid and cmdid are
the request's; anything else (a stale reply with a smaller seq left over from a timed-out
call, another module's reply, another message, garbage) is skipped and counted. An
API_GetRouteResponse has no seq, so it answers a route request of the same module.
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

from google.protobuf.message import DecodeError, Message

from lars.client.config import SHARDS
from lars.client.registration import RegisterOp, RegisterRequest, RegisterResult, RegisterStatus
from lars.client.result import Host, HostResult, RouteResult
from lars.errors import ProtocolError, ValidationError
from lars.protocol import MsgId, RetCode, dotted_to_wire, lars_pb2, wire_to_dotted
from lars.protocol.checks import Check, parse_check
from lars.reactor.frame import decode_datagram, encode

_Msg = TypeVar("_Msg", bound=Message)

__all__ = [
    "FAILURE_RETCODE",
    "MAX_ID",
    "ClientCore",
    "HostReply",
    "HostRequest",
    "RouteRequest",
    "check_ids",
    "report_code_for",
    "shard_of",
]

# Limits
MAX_ID = 0x7FFFFFFF
SEQ_MASK = 0xFFFFFFFF
_MAX_CACHED_IPS = 4096
# What call() reports for a failed call: any non-zero retcode counts as a failure.
FAILURE_RETCODE = int(RetCode.SYSTEM_ERROR)

_GET_HOST = int(MsgId.GET_HOST_REQUEST)
_GET_HOST_REPLY = int(MsgId.GET_HOST_RESPONSE)
_GET_ROUTE = int(MsgId.API_GET_ROUTE_REQUEST)
_GET_ROUTE_REPLY = int(MsgId.API_GET_ROUTE_RESPONSE)
_REPORT = int(MsgId.REPORT_REQUEST)
_REGISTER = int(MsgId.REGISTER_REQUEST)
_REGISTER_REPLY = int(MsgId.REGISTER_RESPONSE)
_REGISTER_STATUS = {int(s): s for s in RegisterStatus if s is not RegisterStatus.NO_ANSWER}
_RETCODES = {int(code): code for code in RetCode}


def report_code_for(
    exc: BaseException | None, failures: tuple[type[BaseException], ...]
) -> int | None:
    """What `call()` reports when its block ends with `exc` (None: it ended normally).

    0 (success) for a normal end or an Exception outside `failures` (the host did its
    job; the error is the caller's own); FAILURE_RETCODE for an exception in `failures`;
    None (report nothing) for other BaseExceptions such as KeyboardInterrupt or task
    cancellation, which say nothing about the host.
    """
    if exc is None:
        return 0
    if isinstance(exc, failures):
        return FAILURE_RETCODE
    if isinstance(exc, Exception):
        return 0
    return None


def shard_of(modid: int, cmdid: int) -> int:
    """Index of the agent UDP server that owns a module (spec section 4)."""
    return (modid + cmdid) % SHARDS


def check_ids(modid: int, cmdid: int) -> None:
    """Raise ValidationError unless both ids fit the wire's non-negative int32."""
    # type() is not int also rejects bool; one cheap test on the hot path, details on failure.
    if type(modid) is int and type(cmdid) is int and 0 <= modid <= MAX_ID and 0 <= cmdid <= MAX_ID:
        return
    for name, value in (("modid", modid), ("cmdid", cmdid)):
        if type(value) is not int or not 0 <= value <= MAX_ID:
            raise ValidationError(f"{name} must be an integer in 0..{MAX_ID}, got {value!r}")


# NamedTuples, not frozen dataclasses: built once per call, and about 5x cheaper.


class HostRequest(NamedTuple):
    seq: int
    modid: int
    cmdid: int
    shard: int
    datagram: bytes


class RouteRequest(NamedTuple):
    modid: int
    cmdid: int
    shard: int
    datagram: bytes


class HostReply(NamedTuple):
    """A parsed GetHostResponse, before it is matched to a request."""

    seq: int
    modid: int
    cmdid: int
    result: HostResult


class ClientCore:
    """Sequence numbers, request datagrams and reply matching; counters of what was skipped.

    Not thread-safe: each face gives every thread (or event loop) its own core.
    """

    __slots__ = ("_dotted", "_seq", "bad", "skipped")

    def __init__(self, first_seq: int = 0) -> None:
        self._seq = first_seq & SEQ_MASK
        self._dotted: dict[int, str] = {}  # wire ip -> dotted: a client meets few hosts
        self.skipped = 0  # well-formed replies that answer another request (stale seq, module)
        self.bad = 0  # datagrams that are not a reply we understand

    # Requests

    def host_request(self, modid: int, cmdid: int) -> HostRequest:
        check_ids(modid, cmdid)
        self._seq = seq = (self._seq + 1) & SEQ_MASK
        body = lars_pb2.GetHostRequest(seq=seq, modid=modid, cmdid=cmdid).SerializeToString()
        return HostRequest(seq, modid, cmdid, shard_of(modid, cmdid), encode(_GET_HOST, body))

    def route_request(self, modid: int, cmdid: int) -> RouteRequest:
        check_ids(modid, cmdid)
        body = lars_pb2.GetRouteRequest(modid=modid, cmdid=cmdid).SerializeToString()
        return RouteRequest(modid, cmdid, shard_of(modid, cmdid), encode(_GET_ROUTE, body))

    def report_datagram(
        self, modid: int, cmdid: int, ip: str, port: int, retcode: int
    ) -> tuple[int, bytes]:
        """(shard, datagram) of a ReportRequest; retcode 0 is a success, anything else not."""
        check_ids(modid, cmdid)
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValidationError(f"port must be in 1..65535, got {port!r}")
        if not isinstance(retcode, int) or not -0x80000000 <= retcode <= MAX_ID:
            raise ValidationError(f"retcode must be an int32, got {retcode!r}")
        msg = lars_pb2.ReportRequest(modid=modid, cmdid=cmdid, retcode=retcode)
        msg.host.ip = dotted_to_wire(ip)
        msg.host.port = port
        return shard_of(modid, cmdid), encode(_REPORT, msg.SerializeToString())

    def register_request(
        self,
        op: RegisterOp,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        check: str | Check | None = None,
    ) -> RegisterRequest:
        """A RegisterRequest (msgid 11) for the module's agent port; the check and its
        settings travel only with REGISTER. Raises ValidationError on bad arguments."""
        check_ids(modid, cmdid)
        if type(port) is not int or not 1 <= port <= 65535:
            raise ValidationError(f"port must be in 1..65535, got {port!r}")
        op = RegisterOp(op)
        msg = lars_pb2.RegisterRequest(op=int(op))
        inst = msg.instance
        inst.modid, inst.cmdid, inst.ip, inst.port = modid, cmdid, dotted_to_wire(ip), port
        if op is RegisterOp.REGISTER:
            spec = parse_check(check)
            inst.check = spec.text
            if spec.interval is not None:
                msg.interval_ms = max(1, round(spec.interval * 1000))
            if spec.timeout is not None:
                msg.timeout_ms = max(1, round(spec.timeout * 1000))
            msg.fail_after = spec.fail_after or 0
            msg.pass_after = spec.pass_after or 0
        self._seq = seq = (self._seq + 1) & SEQ_MASK
        msg.seq = seq
        datagram = encode(_REGISTER, msg.SerializeToString())
        return RegisterRequest(seq, op, modid, cmdid, ip, port, shard_of(modid, cmdid), datagram)

    def parse_register_reply(self, data: bytes) -> lars_pb2.RegisterResponse | None:
        """The RegisterResponse in a datagram, or None (counted as bad)."""
        return self._decode(data, _REGISTER_REPLY, lars_pb2.RegisterResponse)

    def register_result(
        self, request: RegisterRequest, reply: lars_pb2.RegisterResponse
    ) -> RegisterResult | None:
        """The result when `reply` answers `request` (same seq), else None (counted)."""
        if reply.seq != request.seq:
            self.skipped += 1
            return None
        status = _REGISTER_STATUS.get(reply.retcode, RegisterStatus.REFUSED)
        detail = reply.detail
        if status is RegisterStatus.REFUSED and not detail:
            detail = f"retcode {reply.retcode}"
        return RegisterResult(
            request.op, status, request.modid, request.cmdid, request.ip, request.port, detail
        )

    def match_register(self, request: RegisterRequest, data: bytes) -> RegisterResult | None:
        reply = self.parse_register_reply(data)
        return None if reply is None else self.register_result(request, reply)

    @staticmethod
    def register_failure(request: RegisterRequest, *, timed_out: bool) -> RegisterResult:
        """No reply in time (timed_out) or, otherwise, the datagram was refused."""
        return RegisterResult(
            request.op,
            RegisterStatus.NO_ANSWER,
            request.modid,
            request.cmdid,
            request.ip,
            request.port,
            timed_out=timed_out,
            refused=not timed_out,
        )

    # Replies

    def _decode(self, data: bytes, expected: int, message: type[_Msg]) -> _Msg | None:
        """The `message` a datagram of msgid `expected` carries, or None (counted as bad)."""
        try:
            msgid, body = decode_datagram(data)
            if msgid != expected:
                raise ProtocolError(f"unexpected msgid {msgid}")
            return message.FromString(body)
        except (ProtocolError, DecodeError):
            self.bad += 1
            return None

    def parse_host_reply(self, data: bytes) -> HostReply | None:
        """The GetHostResponse in a datagram, or None (counted as bad) when it is not one."""
        msg = self._decode(data, _GET_HOST_REPLY, lars_pb2.GetHostResponse)
        if msg is None:
            return None
        modid, cmdid = msg.modid, msg.cmdid
        retcode = _RETCODES.get(msg.retcode, RetCode.SYSTEM_ERROR)
        if retcode is not RetCode.SUCC:
            result = HostResult(retcode, modid, cmdid, reason=msg.reason)
        else:
            host = msg.host
            port = host.port
            if 0 < port <= 65535:
                result = HostResult(retcode, modid, cmdid, self._ip(host.ip), port)
            else:  # a SUCC without a usable host is the agent's fault
                result = HostResult(RetCode.SYSTEM_ERROR, modid, cmdid)
        return HostReply(msg.seq, modid, cmdid, result)

    def _ip(self, wire: int) -> str:
        dotted = self._dotted.get(wire)
        if dotted is None:
            if len(self._dotted) >= _MAX_CACHED_IPS:
                self._dotted.clear()
            dotted = self._dotted[wire] = wire_to_dotted(wire)
        return dotted

    def match_host(self, request: HostRequest, data: bytes) -> HostResult | None:
        """The result when `data` answers `request`, else None (skip it, keep waiting)."""
        reply = self.parse_host_reply(data)
        if reply is None:
            return None
        if self.accepts(request, reply):
            return reply.result
        return None

    def accepts(self, request: HostRequest, reply: HostReply) -> bool:
        if (
            reply.seq == request.seq
            and reply.modid == request.modid
            and (reply.cmdid == request.cmdid)
        ):
            return True
        self.skipped += 1
        return False

    def match_route(self, request: RouteRequest, data: bytes) -> RouteResult | None:
        """The result when `data` is the route of the requested module, else None."""
        result = self.parse_route_reply(data)
        if result is None:
            return None
        if result.modid != request.modid or result.cmdid != request.cmdid:
            self.skipped += 1
            return None
        return result

    def parse_route_reply(self, data: bytes) -> RouteResult | None:
        """The API_GetRouteResponse in a datagram, or None (counted as bad)."""
        msg = self._decode(data, _GET_ROUTE_REPLY, lars_pb2.GetRouteResponse)
        if msg is None:
            return None
        hosts = tuple(Host(wire_to_dotted(h.ip), h.port) for h in msg.host if 0 < h.port <= 65535)
        code = RetCode.SUCC if hosts else RetCode.NOEXIST
        return RouteResult(code, msg.modid, msg.cmdid, hosts)

    # Outcomes the faces turn into results or reports

    @staticmethod
    def host_failure(request: HostRequest, *, timed_out: bool) -> HostResult:
        """No reply in time (timed_out) or, otherwise, the datagram was refused."""
        return HostResult(
            RetCode.SYSTEM_ERROR,
            request.modid,
            request.cmdid,
            timed_out=timed_out,
            refused=not timed_out,
        )

    @staticmethod
    def route_failure(request: RouteRequest, *, timed_out: bool) -> RouteResult:
        """No reply in time (timed_out) or, otherwise, the datagram was refused."""
        return RouteResult(
            RetCode.SYSTEM_ERROR,
            request.modid,
            request.cmdid,
            timed_out=timed_out,
            refused=not timed_out,
        )
