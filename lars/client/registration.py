"""What self-registration (issue 20) hands back: results, handles and the refusal error.

A business process registers its own endpoint with the agent on its host (RegisterRequest,
msgid 11, to the agent port of the module: the (modid + cmdid) % 3 rule); the agent holds
the registration, checks it and tells the route service. `LarsClient.register()` returns a
`Registration` handle, `AsyncLarsClient.register()` an `AsyncRegistration`; both carry
`deregister()` and `heartbeat()` (the latter for `ttl:` checks).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

from lars.errors import LarsError, NotAnswering
from lars.protocol.checks import Check

__all__ = [
    "AsyncRegistration",
    "RegisterOp",
    "RegisterRequest",
    "RegisterResult",
    "RegisterStatus",
    "Registration",
    "RegistrationRefused",
    "check_answered",
    "check_registered",
]


class RegisterOp(enum.IntEnum):
    """RegisterRequest.op."""

    REGISTER = 1
    DEREGISTER = 2
    HEARTBEAT = 3


class RegisterStatus(enum.IntEnum):
    """RegisterResponse.retcode, plus NO_ANSWER for a request nobody answered."""

    OK = 0
    REFUSED = 2  # the agent refused it (detail says why)
    NOT_REGISTERED = 3  # deregister/heartbeat of an instance the agent does not hold
    NO_ANSWER = -1  # not on the wire: timed out or refused by the kernel


class RegistrationRefused(LarsError):
    """The agent refused a registration (bad check, limit reached); the message says why."""


def check_answered(result: RegisterResult, agent: str, timeout: float) -> None:
    """Raise NotAnswering naming `agent` ("ip:port") when nobody answered `result`."""
    if result.answered:
        return
    cause = (
        "nothing listens there (port unreachable)"
        if result.refused
        else f"no reply within {timeout:g} s"
    )
    raise NotAnswering(f"agent {agent} does not answer: {cause}")


def check_registered(result: RegisterResult, agent: str, timeout: float) -> None:
    """Return when `result` is a registration the agent holds; raise NotAnswering (no
    answer from `agent`, "ip:port") or RegistrationRefused otherwise."""
    check_answered(result, agent, timeout)
    if not result.ok:
        raise RegistrationRefused(result.why)


class RegisterRequest(NamedTuple):
    seq: int
    op: RegisterOp
    modid: int
    cmdid: int
    ip: str
    port: int
    shard: int
    datagram: bytes


@dataclass(frozen=True, slots=True)
class RegisterResult:
    """The agent's answer to a register, deregister or heartbeat (or that none came)."""

    op: RegisterOp
    status: RegisterStatus
    modid: int
    cmdid: int
    ip: str
    port: int
    detail: str = ""
    timed_out: bool = False  # no answer within the timeout
    refused: bool = False  # the kernel reported the agent port closed

    @property
    def ok(self) -> bool:
        return self.status is RegisterStatus.OK

    @property
    def answered(self) -> bool:
        return self.status is not RegisterStatus.NO_ANSWER

    @property
    def instance(self) -> str:
        return f"{self.modid}:{self.cmdid} {self.ip}:{self.port}"

    @property
    def why(self) -> str:
        """One line for people: what happened."""
        verb = self.op.name.lower()
        if self.status is RegisterStatus.OK:
            done = {"register": "registered", "deregister": "deregistered"}.get(verb, "heartbeat")
            return f"{done} {self.instance}"
        if self.status is RegisterStatus.NOT_REGISTERED:
            return f"not registered: {self.instance}"
        if self.status is RegisterStatus.REFUSED:
            return f"{verb} {self.instance} refused: {self.detail or 'no reason given'}"
        return f"{verb} {self.instance}: the agent does not answer"


class Registration:
    """A registration held by the agent; `deregister()` ends it (or `with` does)."""

    def __init__(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        check: Check,
        call: Callable[[RegisterOp], RegisterResult],
    ) -> None:
        self.modid, self.cmdid, self.ip, self.port, self.check = modid, cmdid, ip, port, check
        self._call = call

    def deregister(self) -> RegisterResult:
        """Remove it from the agent: OK, or NOT_REGISTERED when the agent had none."""
        return self._call(RegisterOp.DEREGISTER)

    def heartbeat(self) -> RegisterResult:
        """Tell the agent the instance is alive (what a `ttl:` check waits for)."""
        return self._call(RegisterOp.HEARTBEAT)

    def __enter__(self) -> Registration:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.deregister()

    def __repr__(self) -> str:
        return f"Registration({self.modid}, {self.cmdid}, {self.ip}:{self.port}, {self.check.text})"


class AsyncRegistration:
    """The asyncio form of Registration."""

    def __init__(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        check: Check,
        call: Callable[[RegisterOp], Awaitable[RegisterResult]],
    ) -> None:
        self.modid, self.cmdid, self.ip, self.port, self.check = modid, cmdid, ip, port, check
        self._call = call

    async def deregister(self) -> RegisterResult:
        return await self._call(RegisterOp.DEREGISTER)

    async def heartbeat(self) -> RegisterResult:
        return await self._call(RegisterOp.HEARTBEAT)

    def __repr__(self) -> str:
        return (
            f"AsyncRegistration({self.modid}, {self.cmdid}, {self.ip}:{self.port}, "
            f"{self.check.text})"
        )
