"""The floor under a route push: one small send() per connection on loopback.

    python -m benchmarks.loopback_send_cost [--conns 4000] [--bytes 60] [--rounds 3]
    python -m benchmarks.loopback_send_cost --uvloop [--conns 4000] ...

Opens `--conns` loopback TCP connections in this process (TCP_NODELAY, as the reactor
sets), then per round sends `--bytes` bytes on every server-side socket with a plain
blocking `socket.send` in a Python loop (no event loop, no framing) and prints the
microseconds per send; the receivers are drained between rounds. A route push writes
one frame per subscribed connection, so this is what a fan-out costs at the least in
one process (on loopback the sender's syscall also runs the receiver's TCP path).
`--uvloop` does the same through uvloop transports (a uvloop server accepts the
connections; the loop calls `transport.write` on each), which is what the reactor's
connections write with.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import time

import uvloop


async def through_uvloop(conns: int, size: int, rounds: int) -> None:
    transports: list[asyncio.BaseTransport] = []

    class Accepted(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)

    server = await asyncio.get_running_loop().create_server(Accepted, "127.0.0.1", 0, backlog=conns)
    port = server.sockets[0].getsockname()[1]
    clients: list[socket.socket] = []
    try:
        for i in range(conns):
            client = socket.create_connection(("127.0.0.1", port))
            client.setblocking(False)
            clients.append(client)
            if i % 100 == 0:
                await asyncio.sleep(0.001)  # let the loop accept
        while len(transports) < conns:
            await asyncio.sleep(0.01)
        data = b"x" * size
        for _ in range(rounds):
            t0 = time.perf_counter()
            for transport in transports:
                transport.write(data)  # type: ignore[attr-defined]
            seconds = time.perf_counter() - t0
            for client in clients:
                try:
                    client.recv(65536)
                except BlockingIOError:
                    pass
            print(
                f"{seconds / conns * 1e6:.2f} us per uvloop transport.write ({conns} connections)"
            )
    finally:
        for transport in transports:
            transport.close()
        for client in clients:
            client.close()
        server.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conns", type=int, default=4000)
    ap.add_argument("--bytes", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--uvloop", action="store_true", help="through uvloop transports")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * args.conns + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    if args.uvloop:
        uvloop.run(through_uvloop(args.conns, args.bytes, args.rounds))
        return
    pairs: list[tuple[socket.socket, socket.socket]] = []
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(args.conns)
        try:
            for _ in range(args.conns):
                client = socket.create_connection(srv.getsockname())
                server, _addr = srv.accept()
                server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                pairs.append((server, client))
            data = b"x" * args.bytes
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                for server, _client in pairs:
                    server.send(data)
                seconds = time.perf_counter() - t0
                for _server, client in pairs:
                    client.recv(65536)
                print(f"{seconds / args.conns * 1e6:.2f} us per send ({args.conns} connections)")
        finally:
            for server, client in pairs:
                server.close()
                client.close()


if __name__ == "__main__":
    main()
