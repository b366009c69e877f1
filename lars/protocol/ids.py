"""Message ids and return codes of the Lars wire (spec section 2)."""

from __future__ import annotations

import enum

__all__ = ["MsgId", "RetCode"]


class MsgId(enum.IntEnum):
    GET_ROUTE_REQUEST = 1
    GET_ROUTE_RESPONSE = 2
    REPORT_STATUS_REQUEST = 3
    GET_HOST_REQUEST = 4
    GET_HOST_RESPONSE = 5
    REPORT_REQUEST = 6
    API_GET_ROUTE_REQUEST = 7
    API_GET_ROUTE_RESPONSE = 8


class RetCode(enum.IntEnum):
    SUCC = 0
    OVERLOAD = 1
    SYSTEM_ERROR = 2
    NOEXIST = 3
