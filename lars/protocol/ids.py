"""Message ids and return codes of the Lars wire (spec section 2)."""

from __future__ import annotations

import enum

__all__ = ["MsgId", "NoHostReason", "RetCode"]


class MsgId(enum.IntEnum):
    GET_ROUTE_REQUEST = 1
    GET_ROUTE_RESPONSE = 2
    REPORT_STATUS_REQUEST = 3
    GET_HOST_REQUEST = 4
    GET_HOST_RESPONSE = 5
    REPORT_REQUEST = 6
    API_GET_ROUTE_REQUEST = 7
    API_GET_ROUTE_RESPONSE = 8
    # lars only (issue 20, self-registration): original peers never receive these.
    # 9/10 travel only on a route-service connection that advertised
    # GetRouteResponse.registrations = true; 11/12 only between a process and a lars agent.
    INSTANCE_SYNC = 9  # agent -> route service: the agent's full set of registrations
    INSTANCE_SYNC_ACK = 10  # route service -> agent: seq acknowledged, lease seconds
    REGISTER_REQUEST = 11  # business process -> agent, UDP
    REGISTER_RESPONSE = 12  # agent -> business process, UDP


class RetCode(enum.IntEnum):
    SUCC = 0
    OVERLOAD = 1
    SYSTEM_ERROR = 2
    NOEXIST = 3


class NoHostReason(enum.IntEnum):
    """GetHostResponse.reason (field 6, lars only): why a lars agent answered NOEXIST.

    The retcode on the wire stays NOEXIST for compatibility; original peers skip the
    field, and 0 (NONE) is not encoded at all, so such answers are byte-identical to an
    original agent's.
    """

    NONE = 0  # no reason given (a SUCC or OVERLOAD answer, or an original agent)
    ROUTE_SERVICE_UNREACHABLE = 1  # the agent has no connection to any route service
    EMPTY = 2  # the route service says the module has no hosts (unknown there)
    PENDING = 3  # asked the route service, awaiting its first answer for the module
    MODULE_LIMIT = 4  # the agent's max_modules is reached: the module is not kept
    WRONG_PORT = 5  # sent to another shard's port: (modid + cmdid) % 3 picks the port

    @property
    def text(self) -> str:
        return _REASON_TEXT[self]


_REASON_TEXT = {
    NoHostReason.NONE: "no reason given",
    NoHostReason.ROUTE_SERVICE_UNREACHABLE: "the agent cannot reach the route service",
    NoHostReason.EMPTY: "the route service has no hosts for it",
    NoHostReason.PENDING: "the agent is still fetching its route",
    NoHostReason.MODULE_LIMIT: "the agent's module limit is reached",
    NoHostReason.WRONG_PORT: "sent to the wrong agent port for this module",
}
