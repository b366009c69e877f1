"""The echo benchmark server (spec section 10) on the reactor's TcpServer.

It answers every msgid-1 frame with msgid 1 and the same EchoMessage content and id, so
Lars echo benchmark clients can drive it. By default each body is parsed and serialised
again, as the original server does, so the figure includes protobuf work; `raw=True`
echoes the body bytes unparsed and measures the reactor alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from lars.protocol.echo_pb2 import EchoMessage
from lars.reactor import ReactorConfig, Router, TcpServer

__all__ = ["ECHO_MSGID", "EchoServer", "make_echo_router", "rss_kib"]

ECHO_MSGID = 1


def make_echo_router(*, raw: bool = False) -> Router:
    """A router answering msgid 1 with an echo of the request (parsed, or raw bytes)."""
    router = Router()
    if raw:

        def echo_raw(conn: Any, msgid: int, body: bytes) -> None:
            conn.send(msgid, body)

        router.register(ECHO_MSGID, echo_raw)
        return router

    parse = EchoMessage.FromString

    def echo(conn: Any, msgid: int, body: bytes) -> None:
        conn.send(msgid, parse(body).SerializeToString())

    router.register(ECHO_MSGID, echo)
    return router


def rss_kib() -> int:
    """This process's resident set size in KiB (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class EchoServer:
    """A TcpServer with the echo router; `start()` returns once listening."""

    def __init__(self, config: ReactorConfig, *, raw: bool = False) -> None:
        self.raw = raw
        self.server = TcpServer(config, make_echo_router(raw=raw), name="echo")

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def frames_in(self) -> int:
        return self.server.stats().frames_in

    def serve_until(
        self, stop: threading.Event, report: Callable[[str], None], *, seconds: float | None = None
    ) -> None:
        """Report frames/s, connections and RSS once a second until `stop` is set or
        `seconds` have passed."""
        end = None if seconds is None else time.monotonic() + seconds
        last = self.frames_in()
        last_cpu = time.process_time()
        while True:
            wait = 1.0 if end is None else min(1.0, end - time.monotonic())
            if wait <= 0 or stop.wait(wait):
                return
            stats = self.server.stats()
            cpu = time.process_time()
            rate = stats.frames_in - last
            per_frame = (cpu - last_cpu) / rate * 1e6 if rate else 0.0
            last, last_cpu = stats.frames_in, cpu
            report(
                f"echo server: {rate} frames/s, {per_frame:.2f} us CPU/frame, "
                f"{stats.connections} conns, rss {rss_kib() // 1024} MiB, "
                f"errors {stats.frame_errors + stats.bad_bodies}"
            )
