"""`lars bench echo server|client`: the reactor's echo benchmark (spec section 10)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

from lars.bench.echo_client import ClientConfig
from lars.bench.echo_run import run_client
from lars.bench.echo_server import EchoServer, rss_kib
from lars.errors import ConfigError, NetworkError
from lars.reactor import ReactorConfig

__all__ = ["register"]


def register(subparsers: Any) -> None:
    kinds = _bench_kinds(subparsers)
    echo = kinds.add_parser("echo", help="the reactor's echo QPS benchmark (msgid 1)")
    sides = echo.add_subparsers(dest="side", metavar="SIDE", required=True)

    server = sides.add_parser("server", help="run the echo server until Ctrl-C")
    server.add_argument("--ip", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=7777, help="port (default 7777; 0: any)")
    server.add_argument(
        "--threads", type=int, default=0, help="worker loops (0: the master serves; default 0)"
    )
    server.add_argument(
        "--raw",
        action="store_true",
        help="echo body bytes unparsed (default: parse and re-serialise like the original)",
    )
    server.add_argument("--seconds", type=float, default=None, help="stop after this long")
    _add_cpus(server)
    server.add_argument("--quiet", action="store_true", help="no per-second report")
    server.set_defaults(func=_server)

    client = sides.add_parser("client", help="drive an echo server and print QPS")
    client.add_argument("--host", default="127.0.0.1")
    client.add_argument("--port", type=int, default=7777)
    client.add_argument("--conns", type=int, default=10, help="connections (default 10)")
    client.add_argument("--procs", type=int, default=1, help="client processes (default 1)")
    client.add_argument(
        "--depth", type=int, default=1, help="requests in flight per connection (1: ping-pong)"
    )
    client.add_argument("--seconds", type=float, default=10.0, help="duration (default 10)")
    client.add_argument("--content", default=None, help="request content string")
    _add_cpus(client)
    client.set_defaults(func=_client)


def _bench_kinds(subparsers: Any) -> Any:
    """The `lars bench` kinds; other modules add theirs (`lars bench agent`) to the same."""
    bench = subparsers.choices.get("bench")
    if bench is None:
        bench = subparsers.add_parser("bench", help="benchmarks")
    for action in bench._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return bench.add_subparsers(dest="bench", metavar="BENCH", required=True)


def _add_cpus(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cpus",
        type=_cpu_list,
        default=None,
        help="pin this process (and its children) to these CPUs, e.g. 0 or 0,1 (like taskset)",
    )


def _cpu_list(text: str) -> set[int]:
    try:
        cpus = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad CPU list {text!r}; expected e.g. 0 or 0,1") from None
    if not cpus or min(cpus) < 0:
        raise argparse.ArgumentTypeError(f"bad CPU list {text!r}")
    return cpus


def _pin(cpus: set[int] | None) -> None:
    if cpus is not None:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError as exc:
            raise ConfigError(f"cannot pin to CPUs {sorted(cpus)}: {exc}") from exc


def _server(args: argparse.Namespace) -> int:
    _pin(args.cpus)
    config = ReactorConfig(ip=args.ip, port=args.port, threads=args.threads)
    server = EchoServer(config, raw=args.raw)
    try:
        server.start()
    except OSError as exc:
        cause = exc.strerror or str(exc)
        raise NetworkError(f"cannot listen on {args.ip}:{args.port}: {cause}") from exc
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _SIGNALS}
    mode = "raw bytes" if args.raw else "parse + serialise"
    _flush_print(f"echo server on {args.ip}:{server.port}, {args.threads} worker loop(s), {mode}")
    try:
        report = (lambda _line: None) if args.quiet else _flush_print
        server.serve_until(stop, report, seconds=args.seconds)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _flush_print(f"echo server stopped; rss {rss_kib()} KiB")
    return 0


def _client(args: argparse.Namespace) -> int:
    _pin(args.cpus)
    extra = {} if args.content is None else {"content": args.content}
    try:
        cfg = ClientConfig(
            host=args.host,
            port=args.port,
            conns=args.conns,
            procs=args.procs,
            depth=args.depth,
            seconds=args.seconds,
            **extra,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    result = run_client(cfg, _flush_print)
    _flush_print(result.summary(cfg))
    return 0 if result.errors == 0 and result.replies > 0 else 1


def _flush_print(line: str) -> None:
    print(line, flush=True)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
