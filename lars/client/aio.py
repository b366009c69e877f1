"""AsyncLarsClient: the asyncio face of the client API (one DatagramProtocol per agent port).

Many calls may be in flight at once from any number of tasks of the loop the client was
opened on: each get_host has its own seq and a future in a table keyed by seq, so replies
are matched whatever their order. A reply that matches nothing in flight (stale, another
module, garbage) is skipped and counted. The client is bound to one event loop and is not
thread-safe; use one per loop.

Calls in flight are bounded only by the caller; past the socket buffers (4 MB asked)
replies may be lost, and those calls end with a timeout like any lost datagram.

Failures are results, exactly as in LarsClient: no answer within the timeout gives
SYSTEM_ERROR with `timed_out=True`; a closed agent port (ICMP refusal) ends the calls
waiting on it with SYSTEM_ERROR at once; `close()` ends every call in flight likewise.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import AsyncIterator
from typing import Any

from lars.client.config import (
    DEFAULT_AGENT_IP,
    DEFAULT_BASE_PORT,
    DEFAULT_TIMEOUT,
    REG_INIT_ATTEMPTS,
    REG_INIT_DELAY,
    REGISTER_RESENDS,
    REGISTER_TIMEOUT,
    ClientConfig,
)
from lars.client.core import ClientCore, HostRequest, RouteRequest, report_code_for, shard_of
from lars.client.registration import (
    AsyncRegistration,
    RegisterOp,
    RegisterRequest,
    RegisterResult,
    check_registered,
)
from lars.client.result import ClientStats, HostResult, NoHostError, RouteResult
from lars.errors import NetworkError
from lars.protocol import MsgId, RetCode
from lars.protocol.checks import Check, parse_check
from lars.reactor.frame import HEADER

__all__ = ["AsyncLarsClient"]

# Replies to a burst of calls in flight arrive together; the default buffer (~200 kB,
# ~1 kB of kernel overhead per datagram) would drop them past a few hundred.
RCVBUF = 4 * 1024 * 1024
_HOST_REPLY = int(MsgId.GET_HOST_RESPONSE)
_ROUTE_REPLY = int(MsgId.API_GET_ROUTE_RESPONSE)
_REGISTER_REPLY = int(MsgId.REGISTER_RESPONSE)


class _Endpoint(asyncio.DatagramProtocol):
    """A connected UDP socket to one agent port; everything it receives goes to the client."""

    def __init__(self, client: AsyncLarsClient, shard: int) -> None:
        self.client = client
        self.shard = shard
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.client._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        self.client._on_error(self.shard, exc)


class AsyncLarsClient:
    """`async with AsyncLarsClient() as client: await client.get_host(1, 1)`."""

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
        self._core = ClientCore()
        self._endpoints: list[_Endpoint] = []
        self._hosts: dict[int, tuple[HostRequest, asyncio.Future[HostResult]]] = {}
        self._routes: dict[tuple[int, int], list[asyncio.Future[RouteResult]]] = {}
        self._registers: dict[int, tuple[RegisterRequest, asyncio.Future[RegisterResult]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.timeouts = 0
        self.send_errors = 0

    # Lifecycle

    async def open(self) -> None:
        """Create the three UDP endpoints on the running loop."""
        if self._loop is not None:
            raise NetworkError("AsyncLarsClient is already open")
        loop = asyncio.get_running_loop()
        try:
            for shard, address in enumerate(self.config.addresses()):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                    sock.setblocking(False)
                    sock.connect(address)
                except OSError:
                    sock.close()
                    raise
                _, endpoint = await loop.create_datagram_endpoint(
                    functools.partial(_Endpoint, self, shard), sock=sock
                )
                self._endpoints.append(endpoint)
        except OSError as exc:
            self.close()
            raise NetworkError(f"cannot reach agent {self.config.addresses()}: {exc}") from exc
        self._loop = loop

    async def __aenter__(self) -> AsyncLarsClient:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the sockets; calls in flight end with SYSTEM_ERROR."""
        for endpoint in self._endpoints:
            if endpoint.transport is not None:
                endpoint.transport.close()
                endpoint.transport = None
        self._endpoints.clear()
        for request, future in self._hosts.values():
            if not future.done():
                future.set_result(self._core.host_failure(request, timed_out=False))
        self._hosts.clear()
        for (modid, cmdid), futures in self._routes.items():
            failure = RouteResult(RetCode.SYSTEM_ERROR, modid, cmdid)
            for fut in futures:
                if not fut.done():
                    fut.set_result(failure)
        self._routes.clear()
        for pending, reg_future in self._registers.values():
            if not reg_future.done():
                reg_future.set_result(self._core.register_failure(pending, timed_out=False))
        self._registers.clear()

    def stats(self) -> ClientStats:
        return ClientStats(self.timeouts, self.send_errors, self._core.skipped, self._core.bad)

    def _send(self, shard: int, datagram: bytes) -> None:
        if not self._endpoints:
            raise NetworkError("AsyncLarsClient is not open")
        transport = self._endpoints[shard].transport
        if transport is None:
            raise NetworkError("AsyncLarsClient is closed")
        transport.sendto(datagram)

    # Calls

    async def get_host(self, modid: int, cmdid: int, *, timeout: float | None = None) -> HostResult:
        """One host of the module, or OVERLOAD / NOEXIST / SYSTEM_ERROR (see HostResult)."""
        request = self._core.host_request(modid, cmdid)
        loop = self._loop
        if loop is None:
            raise NetworkError("AsyncLarsClient is not open")
        future: asyncio.Future[HostResult] = loop.create_future()
        seq = request.seq
        self._hosts[seq] = (request, future)
        timer = loop.call_later(
            self.config.timeout if timeout is None else timeout, self._expire_host, seq
        )
        try:
            self._send(request.shard, request.datagram)
            return await future
        finally:
            timer.cancel()
            if self._hosts.get(seq, (None, None))[1] is future:
                del self._hosts[seq]

    def _expire_host(self, seq: int) -> None:
        entry = self._hosts.pop(seq, None)
        if entry is not None and not entry[1].done():
            self.timeouts += 1
            entry[1].set_result(self._core.host_failure(entry[0], timed_out=True))

    async def get_route(
        self, modid: int, cmdid: int, *, timeout: float | None = None
    ) -> RouteResult:
        """Every host the agent holds for the module (an unknown module is fetched: NOEXIST)."""
        request = self._core.route_request(modid, cmdid)
        loop = self._loop
        if loop is None:
            raise NetworkError("AsyncLarsClient is not open")
        future: asyncio.Future[RouteResult] = loop.create_future()
        key = (modid, cmdid)
        self._routes.setdefault(key, []).append(future)
        timer = loop.call_later(
            self.config.timeout if timeout is None else timeout,
            self._expire_route,
            request,
            future,
        )
        try:
            self._send(request.shard, request.datagram)
            return await future
        finally:
            timer.cancel()
            waiting = self._routes.get(key)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._routes[key]

    def _expire_route(self, request: RouteRequest, future: asyncio.Future[RouteResult]) -> None:
        if not future.done():
            self.timeouts += 1
            future.set_result(self._core.route_failure(request, timed_out=True))

    async def report(self, modid: int, cmdid: int, ip: str, port: int, retcode: int) -> None:
        """Tell the agent how a call to ip:port went (0 success); fire and forget."""
        shard, datagram = self._core.report_datagram(modid, cmdid, ip, port, retcode)
        self._send(shard, datagram)

    async def reg_init(
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
                await asyncio.sleep(delay)
            code = (await self.get_route(modid, cmdid, timeout=timeout)).retcode
            if code != RetCode.NOEXIST:
                break
        return code

    @contextlib.asynccontextmanager
    async def call(
        self,
        modid: int,
        cmdid: int,
        *,
        timeout: float | None = None,
        failures: tuple[type[BaseException], ...] | None = None,
    ) -> AsyncIterator[HostResult]:
        """`async with client.call(m, c) as host:` as LarsClient.call (cancellation: no report)."""
        host = await self.get_host(modid, cmdid, timeout=timeout)
        if not host.ok:
            raise NoHostError(host)
        try:
            yield host
        except BaseException as exc:
            code = report_code_for(exc, failures or self.config.failures)
            if code is not None and self._endpoints:
                await self.report(modid, cmdid, host.ip, host.port, code)
            raise
        await self.report(modid, cmdid, host.ip, host.port, 0)

    # Self-registration (issue 20): as LarsClient's, awaited

    async def register(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        check: str | Check = "tcp",
        *,
        timeout: float | None = None,
    ) -> AsyncRegistration:
        """As LarsClient.register: raises ValidationError, NotAnswering or
        RegistrationRefused; returns a handle with `deregister()` and `heartbeat()`."""
        spec = parse_check(check)
        result = await self._register_call(
            RegisterOp.REGISTER, modid, cmdid, ip, port, spec, timeout
        )
        ip_port = self.config.addresses()[shard_of(modid, cmdid)]
        wait = max(REGISTER_TIMEOUT, self.config.timeout) if timeout is None else timeout
        check_registered(result, f"{ip_port[0]}:{ip_port[1]}", wait)
        call = functools.partial(self._handle_call, modid, cmdid, ip, port, timeout)
        return AsyncRegistration(modid, cmdid, ip, port, spec, call)

    @contextlib.asynccontextmanager
    async def registered(
        self,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        check: str | Check = "tcp",
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[AsyncRegistration]:
        """`async with client.registered(...) as reg:` deregistered on the way out."""
        registration = await self.register(modid, cmdid, ip, port, check, timeout=timeout)
        try:
            yield registration
        finally:
            if self._endpoints:
                await registration.deregister()

    async def deregister(
        self, modid: int, cmdid: int, ip: str, port: int, *, timeout: float | None = None
    ) -> RegisterResult:
        return await self._register_call(
            RegisterOp.DEREGISTER, modid, cmdid, ip, port, None, timeout
        )

    async def heartbeat(
        self, modid: int, cmdid: int, ip: str, port: int, *, timeout: float | None = None
    ) -> RegisterResult:
        return await self._register_call(
            RegisterOp.HEARTBEAT, modid, cmdid, ip, port, None, timeout
        )

    async def _handle_call(
        self, modid: int, cmdid: int, ip: str, port: int, timeout: float | None, op: RegisterOp
    ) -> RegisterResult:
        return await self._register_call(op, modid, cmdid, ip, port, None, timeout)

    async def _register_call(
        self,
        op: RegisterOp,
        modid: int,
        cmdid: int,
        ip: str,
        port: int,
        check: Check | None,
        timeout: float | None,
    ) -> RegisterResult:
        request = self._core.register_request(op, modid, cmdid, ip, port, check)
        loop = self._loop
        if loop is None:
            raise NetworkError("AsyncLarsClient is not open")
        future: asyncio.Future[RegisterResult] = loop.create_future()
        seq = request.seq
        self._registers[seq] = (request, future)
        wait = max(REGISTER_TIMEOUT, self.config.timeout) if timeout is None else timeout
        deadline = loop.time() + wait
        try:
            while not future.done():
                self._send(request.shard, request.datagram)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.shield(future), min(remaining, wait / REGISTER_RESENDS)
                    )
            if future.done():
                return future.result()
            self.timeouts += 1
            return self._core.register_failure(request, timed_out=True)
        finally:
            if self._registers.get(seq, (None, None))[1] is future:
                del self._registers[seq]

    # Replies

    def _on_error(self, shard: int, exc: Exception) -> None:
        """ICMP port unreachable: nothing listens on that agent port, so the calls waiting
        on it end now with SYSTEM_ERROR (not timed out), as in LarsClient."""
        self.send_errors += 1
        if not isinstance(exc, ConnectionRefusedError):
            return
        for seq, (request, future) in list(self._hosts.items()):
            if request.shard == shard:
                del self._hosts[seq]
                if not future.done():
                    future.set_result(self._core.host_failure(request, timed_out=False))
        for (modid, cmdid), futures in list(self._routes.items()):
            if shard_of(modid, cmdid) == shard:
                del self._routes[(modid, cmdid)]
                failure = RouteResult(RetCode.SYSTEM_ERROR, modid, cmdid)
                for waiter in futures:
                    if not waiter.done():
                        waiter.set_result(failure)
        for seq, (reg, reg_future) in list(self._registers.items()):
            if reg.shard == shard:
                del self._registers[seq]
                if not reg_future.done():
                    reg_future.set_result(self._core.register_failure(reg, timed_out=False))

    def _on_datagram(self, data: bytes) -> None:
        core = self._core
        msgid = HEADER.unpack_from(data, 0)[0] if len(data) >= HEADER.size else -1
        if msgid == _HOST_REPLY:
            reply = core.parse_host_reply(data)
            if reply is None:
                return
            entry = self._hosts.get(reply.seq)
            if entry is None:
                core.skipped += 1
            elif core.accepts(entry[0], reply):
                del self._hosts[reply.seq]
                if not entry[1].done():
                    entry[1].set_result(reply.result)
        elif msgid == _ROUTE_REPLY:
            result = core.parse_route_reply(data)
            if result is None:
                return
            waiting = self._routes.pop((result.modid, result.cmdid), None)
            if waiting is None:
                core.skipped += 1
                return
            for future in waiting:
                if not future.done():
                    future.set_result(result)
        elif msgid == _REGISTER_REPLY:
            reg_reply = core.parse_register_reply(data)
            if reg_reply is None:
                return
            waiter = self._registers.get(reg_reply.seq)
            if waiter is None:
                core.skipped += 1
                return
            reg_result = core.register_result(waiter[0], reg_reply)
            if reg_result is not None and not waiter[1].done():
                waiter[1].set_result(reg_result)
        else:
            core.bad += 1
