"""A bare uvloop echo server: the floor under `lars bench echo server`.

It writes every read straight back (no frames, no router, no protobuf), so the same
`lars bench echo client` measures what the machine and uvloop allow; the difference to
the lars server is the reactor's and protobuf's cost per message. Prints the same first
line as `lars bench echo server`, so scripts can read the port from it.

    python benchmarks/echo_baseline.py --seconds 8 --cpus 0 &
    lars bench echo client --port PORT --conns 10 --seconds 4 --cpus 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import uvloop


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def serve(port: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    print(f"echo server on 127.0.0.1:{bound}, baseline (bare uvloop echo)", flush=True)
    async with server:
        await asyncio.sleep(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=30.0, help="stop after this long")
    parser.add_argument("--cpus", default=None, help="pin to these CPUs, e.g. 0")
    args = parser.parse_args()
    if args.cpus is not None:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    uvloop.run(serve(args.port, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
