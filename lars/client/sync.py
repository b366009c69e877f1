"""LarsClient: the blocking face of the client API (plain UDP sockets).

Thread-safety: one LarsClient may be shared by any number of threads. Each thread gets
its own core (sequence numbers) and its own three connected UDP sockets, created on its
first call, so threads never wait for each other and never see each other's replies.
A thread that exits takes its sockets (and its counters in `stats()`) with it; `close()`
closes every live thread's sockets; calls after it raise NetworkError.

Failures are results, not exceptions: when the agent does not answer within the timeout
(down, overloaded, datagram lost) get_host returns SYSTEM_ERROR with `timed_out=True`;
when the kernel reports the agent port closed it returns SYSTEM_ERROR at once. Only
invalid arguments raise (ValidationError), and `call()` raises NoHostError without a host.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TypeVar

from lars.client.config import (
    DEFAULT_AGENT_IP,
    DEFAULT_BASE_PORT,
    DEFAULT_TIMEOUT,
    REG_INIT_ATTEMPTS,
    REG_INIT_DELAY,
    REGISTER_RESENDS,
    REGISTER_TIMEOUT,
    SHARDS,
    ClientConfig,
)
from lars.client.core import ClientCore, HostRequest, RouteRequest, report_code_for
from lars.client.registration import (
    RegisterOp,
    RegisterResult,
    Registration,
    check_registered,
)
from lars.client.result import ClientStats, HostResult, NoHostError, RouteResult
from lars.errors import NetworkError
from lars.protocol import RetCode
from lars.protocol.checks import Check, parse_check

__all__ = ["LarsClient"]

_RECV_SIZE = 65536

_Req = TypeVar("_Req", HostRequest, RouteRequest)
_Res = TypeVar("_Res", HostResult, RouteResult)


def _close_all(socks: list[socket.socket | None]) -> None:
    for i, sock in enumerate(socks):
        if sock is not None:
            sock.close()
            socks[i] = None


class _ThreadState:
    __slots__ = ("__weakref__", "core", "send_errors", "socks", "timeouts")

    def __init__(self) -> None:
        self.core = ClientCore()
        self.socks: list[socket.socket | None] = [None] * SHARDS
        self.timeouts = 0
        self.send_errors = 0


class LarsClient:
    """Blocking get_host / report / get_route against the local agent (spec sections 2, 4)."""

    def __init__(
        self,
        agent_ip: str = DEFAULT_AGENT_IP,
        base_port: int = DEFAULT_BASE_PORT,
        *,
        ports: tuple[int, int, int] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        failures: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        self.config = ClientConfig(
            agent_ip=agent_ip, base_port=base_port, ports=ports, timeout=timeout, failures=failures
        )
        self._addresses = self.config.addresses()
        self._local = threading.local()
        self._lock = threading.Lock()  # guards _states and _closed, never held during I/O
        # Weak: a thread that exits drops its state, and a finalizer closes its sockets.
        self._states: weakref.WeakSet[_ThreadState] = weakref.WeakSet()
        self._closed = False

    @classmethod
    def from_config(cls, config: ClientConfig) -> LarsClient:
        return cls(
            config.agent_ip,
            config.base_port,
            ports=config.ports,
            timeout=config.timeout,
            failures=config.failures,
        )

    # Lifecycle

    def __enter__(self) -> LarsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for state in list(self._states):
                _close_all(state.socks)

    def stats(self) -> ClientStats:
        with self._lock:
            states = list(self._states)
        return ClientStats(
            timeouts=sum(s.timeouts for s in states),
            send_errors=sum(s.send_errors for s in states),
            skipped=sum(s.core.skipped for s in states),
            bad=sum(s.core.bad for s in states),
        )

    def _state(self) -> _ThreadState:
        if self._closed:
            raise NetworkError("LarsClient is closed")
        state: _ThreadState | None = getattr(self._local, "state", None)
        if state is None:
            state = _ThreadState()
            weakref.finalize(state, _close_all, state.socks)
            with self._lock:
                self._states.add(state)
            self._local.state = state
        return state

    def _socket(self, state: _ThreadState, shard: int) -> socket.socket:
        sock = state.socks[shard]
        if sock is not None:
            return sock
        with self._lock:
            if self._closed:
                raise NetworkError("LarsClient is closed")
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.connect(self._addresses[shard])
            except OSError as exc:
                sock.close()
                raise NetworkError(f"cannot reach agent {self._addresses[shard]}: {exc}") from exc
            state.socks[shard] = sock
        return sock

    # Calls

    def get_host(self, modid: int, cmdid: int, *, timeout: float | None = None) -> HostResult:
        """One host of the module, or OVERLOAD / NOEXIST / SYSTEM_ERROR (see HostResult)."""
        state = self._state()
        core = state.core
        request = core.host_request(modid, cmdid)
        return self._exchange(state, request, core.match_host, core.host_failure, timeout)

    def get_route(self, modid: int, cmdid: int, *, timeout: float | None = None) -> RouteResult:
        """Every host the agent holds for the module (an unknown module is fetched: NOEXIST)."""
        state = self._state()
        core = state.core
        request = core.route_request(modid, cmdid)
        return self._exchange(state, request, core.match_route, core.route_failure, timeout)

    def _exchange(
        self,
        state: _ThreadState,
        request: _Req,
        match: Callable[[_Req, bytes], _Res | None],
        failure: Callable[..., _Res],
        timeout: float | None,
    ) -> _Res:
        """Send `request` and wait for the datagram `match` accepts; failure() otherwise."""
        sock = self._socket(state, request.shard)
        for data in self._replies(state, sock, request.datagram, timeout):
            if data is None:
                return failure(request, timed_out=False)
            result = match(request, data)
            if result is not None:
                return result
        state.timeouts += 1
        return failure(request, timed_out=True)

    def report(self, modid: int, cmdid: int, ip: str, port: int, retcode: int) -> None:
        """Tell the agent how a call to ip:port went (0 success, anything else failure).

        Fire and forget, as on the wire: a send error is counted, never raised.
        """
        state = self._state()
        shard, datagram = state.core.report_datagram(modid, cmdid, ip, port, retcode)
        sock = self._socket(state, shard)
        try:
            sock.send(datagram)
        except OSError:
            state.send_errors += 1

    def reg_init(
        self,
        modid: int,
        cmdid: int,
        *,
        attempts: int = REG_INIT_ATTEMPTS,
        delay: float = REG_INIT_DELAY,
        timeout: float | None = None,
    ) -> RetCode:
        """Make the agent fetch the module: SUCC once it has hosts, else the last retcode.

        Retries (`attempts`, `delay` apart) only while the agent answers NOEXIST, i.e. is
        still fetching the route; SYSTEM_ERROR (no agent answering) returns at once.
        """
        code = RetCode.NOEXIST
        for attempt in range(max(1, attempts)):
            if attempt:
                time.sleep(delay)
            code = self.get_route(modid, cmdid, timeout=timeout).retcode
            if code != RetCode.NOEXIST:
                break
        return code

    @contextlib.contextmanager
    def call(
        self,
        modid: int,
        cmdid: int,
        *,
        timeout: float | None = None,
        failures: tuple[type[BaseException], ...] | None = None,
    ) -> Iterator[HostResult]:
        """`with client.call(m, c) as host:` get a host, then report how the block went.

        Raises NoHostError when get_host gives no host. A normal end reports success; an
        exception in `failures` (default: the client's, Exception) reports a failure; see
        `report_code_for` for the rest. The exception always propagates.
        """
        host = self.get_host(modid, cmdid, timeout=timeout)
        if not host.ok:
            raise NoHostError(host)
        try:
            yield host
        except BaseException as exc:
            code = report_code_for(exc, failures or self.config.failures)
            if code is not None:
                self.report(modid, cmdid, host.ip, host.port, code)
            raise
        self.report(modid, cmdid, host.ip, host.port, 0)

    # Self-registration (issue 20): the agent on this host holds the registration

    def register(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        check: str | Check = "tcp",
        *,
        timeout: float | None = None,
    ) -> Registration:
        """Register ip:port as a host of the module with the local agent, checked by
        `check` ("tcp", "http://HOST:PORT/PATH", "ttl:SECONDS" or a Check). The agent keeps
        it (across its own restarts) until deregistered. Registering again replaces the
        check. Raises ValidationError (bad arguments), NotAnswering (no agent answered
        within `timeout`, default the client's timeout but at least 1 s) or
        RegistrationRefused."""
        spec = parse_check(check)
        result = self.register_op(RegisterOp.REGISTER, modid, cmdid, ip, port, spec, timeout)
        wait = max(REGISTER_TIMEOUT, self.config.timeout) if timeout is None else timeout
        check_registered(result, self.agent_address(modid, cmdid), wait)
        call = functools.partial(self._handle_call, modid, cmdid, ip, port, timeout)
        return Registration(modid, cmdid, ip, port, spec, call)

    @contextlib.contextmanager
    def registered(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        check: str | Check = "tcp",
        *,
        timeout: float | None = None,
    ) -> Iterator[Registration]:
        """`with client.registered(m, c, ip, port):` registered inside, deregistered after."""
        registration = self.register(modid, cmdid, ip, port, check, timeout=timeout)
        try:
            yield registration
        finally:
            registration.deregister()

    def deregister(
        self, modid: int, cmdid: int, ip: str, port: int, *, timeout: float | None = None
    ) -> RegisterResult:
        """Remove a registration: OK, NOT_REGISTERED (the agent had none) or NO_ANSWER."""
        return self.register_op(RegisterOp.DEREGISTER, modid, cmdid, ip, port, None, timeout)

    def heartbeat(
        self, modid: int, cmdid: int, ip: str, port: int, *, timeout: float | None = None
    ) -> RegisterResult:
        """A sign of life for a `ttl:` check: OK, NOT_REGISTERED or NO_ANSWER."""
        return self.register_op(RegisterOp.HEARTBEAT, modid, cmdid, ip, port, None, timeout)

    def _handle_call(
        self, modid: int, cmdid: int, ip: str, port: int, timeout: float | None, op: RegisterOp
    ) -> RegisterResult:
        return self.register_op(op, modid, cmdid, ip, port, None, timeout)

    def agent_address(self, modid: int, cmdid: int) -> str:
        """ "ip:port" of the agent UDP server that owns the module."""
        ip, port = self._addresses[(modid + cmdid) % SHARDS]
        return f"{ip}:{port}"

    def register_op(
        self,
        op: RegisterOp,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        check: Check | None = None,
        timeout: float | None = None,
    ) -> RegisterResult:
        """One register/deregister/heartbeat, failures as results: the agent's answer or
        NO_ANSWER. The request is resent (same seq) every quarter of the wait (`timeout`,
        default the client's timeout but at least REGISTER_TIMEOUT); `check` goes only
        with REGISTER."""
        state = self._state()
        core = state.core
        request = core.register_request(op, modid, cmdid, ip, port, check)
        sock = self._socket(state, request.shard)
        wait = max(REGISTER_TIMEOUT, self.config.timeout) if timeout is None else timeout
        resend = wait / REGISTER_RESENDS
        deadline = time.monotonic() + wait
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                state.timeouts += 1
                return core.register_failure(request, timed_out=True)
            if now >= next_send:
                if not self._send_once(state, sock, request.datagram):
                    return core.register_failure(request, timed_out=False)
                next_send = now + resend
            sock.settimeout(max(0.001, min(deadline, next_send) - now))
            try:
                data = sock.recv(_RECV_SIZE)
            except TimeoutError:
                continue
            except OSError:  # ConnectionRefusedError: nothing listens on the agent port
                return core.register_failure(request, timed_out=False)
            result = core.match_register(request, data)
            if result is not None:
                return result

    @staticmethod
    def _send_once(state: _ThreadState, sock: socket.socket, datagram: bytes) -> bool:
        try:
            try:
                sock.send(datagram)
            except ConnectionRefusedError:  # an earlier datagram's refusal (see _replies)
                sock.send(datagram)
        except OSError:
            state.send_errors += 1
            return False
        return True

    # I/O

    def _replies(
        self, state: _ThreadState, sock: socket.socket, datagram: bytes, timeout: float | None
    ) -> Iterator[bytes | None]:
        """Send, then yield datagrams until the deadline; None means the port refused."""
        deadline = time.monotonic() + (self.config.timeout if timeout is None else timeout)
        try:
            try:
                sock.send(datagram)
            except ConnectionRefusedError:
                # The refusal of an earlier datagram (a report, a call that timed out),
                # consumed by raising here: this one has not been sent yet.
                sock.send(datagram)
        except OSError:
            state.send_errors += 1
            yield None
            return
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            sock.settimeout(remaining)
            try:
                data = sock.recv(_RECV_SIZE)
            except TimeoutError:
                return
            except OSError:  # ConnectionRefusedError: nothing listens on the agent port
                yield None
                return
            yield data
