"""Health listener under attack: which server keeps /healthz answered?

One slow client sends a request head one byte every 3 s (reconnecting when cut off),
a storm process keeps `--concurrency` (2,000) scrapes of /metrics in flight for the
whole run, and a probe asks /healthz once a second for `--seconds` (30). Each server
runs in its own process with the same registry (200 series); the storm in another.

Servers compared (issue 19 item 4):
  old        http.server.HTTPServer, one thread, backlog 5, 5 s read timeout (what
             lars.obs.server used before)
  prom       prometheus_client.start_http_server (ThreadingWSGIServer: a thread per
             connection, backlog 5... whatever socketserver's request_queue_size says)
  lars       lars.obs.server.MetricsServer (asyncio loop on its own thread, 2 s head
             deadline, 512 connections, backlog 2,048)

Reported per server: probes answered within 1 s / answered at all (5 s timeout) /
made, worst probe latency, scrapes answered and failed in the storm.

    python benchmarks/listener.py                     # all three, 30 s each
    python benchmarks/listener.py --only lars --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

SERIES = 200


def _registry():  # type: ignore[no-untyped-def]
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    counter = Counter("bench_things", "things", ["kind"], registry=registry)
    for i in range(SERIES):
        counter.labels(kind=f"k{i}").inc(i)
    return registry


def serve(kind: str, max_connections: int) -> None:
    """Run one server; print its port; serve until stdin closes."""
    registry = _registry()
    if kind == "old":
        from http.server import BaseHTTPRequestHandler, HTTPServer

        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        class Handler(BaseHTTPRequestHandler):
            timeout = 5.0

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body, ctype = generate_latest(registry), CONTENT_TYPE_LATEST
                else:
                    body, ctype = b'{"status": "ok"}\n', "application/json"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        httpd = HTTPServer(("127.0.0.1", 0), Handler)
        httpd.handle_error = lambda *a: None  # type: ignore[method-assign]
        port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    elif kind == "prom":
        from prometheus_client import start_http_server

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        start_http_server(port, addr="127.0.0.1", registry=registry)
    else:
        from lars.obs.ready import Readiness
        from lars.obs.server import ListenerLimits, MetricsServer

        limits = ListenerLimits(max_connections=max_connections) if max_connections else None
        server = MetricsServer(
            ("127.0.0.1", 0), registry, daemon="bench", ready=lambda: Readiness(True),
            status=dict, limits=limits,
        )  # fmt: skip
        server.start()
        port = server.port
    print(port, flush=True)
    sys.stdin.read()


def storm(port: int, concurrency: int, seconds: float) -> None:
    """Keep `concurrency` scrapes in flight; print {"ok": n, "failed": n}."""
    counts = {"ok": 0, "failed": 0}
    end = time.monotonic() + seconds

    async def one() -> None:
        while time.monotonic() < end:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), 20
                )
                writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                data = await asyncio.wait_for(reader.read(), 20)
                writer.close()
                if b" 200 " in data[:20]:
                    counts["ok"] += 1
                else:
                    counts["failed"] += 1
                    why = data[9:12].decode(errors="replace") if data else "closed unanswered"
                    counts[why] = counts.get(why, 0) + 1
            except (OSError, TimeoutError) as exc:
                counts["failed"] += 1
                counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(concurrency)))

    asyncio.run(main())
    print(json.dumps(counts), flush=True)


def slow_client(port: int, stop: threading.Event) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                for byte in head:
                    sock.sendall(bytes([byte]))
                    if stop.wait(3.0):
                        return
        except OSError:
            continue


def run(kind: str, seconds: float, concurrency: int, max_conn: int) -> dict[str, object]:
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", kind, str(max_conn)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None and server.stdin is not None
    port = int(server.stdout.readline())
    stop = threading.Event()
    slow = threading.Thread(target=slow_client, args=(port, stop))
    slow.start()
    time.sleep(1.0)
    load = subprocess.Popen(
        [sys.executable, __file__, "storm", str(port), str(concurrency), str(seconds + 2)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.0)
    latencies: list[float | None] = []
    start = time.monotonic()
    for i in range(int(seconds)):
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as rsp:
                ok = rsp.status == 200
        except OSError:
            ok = False
        latencies.append(time.monotonic() - t0 if ok else None)
        time.sleep(max(0.0, start + i + 1 - time.monotonic()))
    assert load.stdout is not None
    scrapes = json.loads(load.stdout.read() or '{"ok": 0, "failed": 0}')
    load.wait()
    stop.set()
    slow.join()
    server.stdin.close()
    server.terminate()
    server.wait()
    answered = [x for x in latencies if x is not None]
    return {
        "server": kind,
        "probes": len(latencies),
        "within_1s": sum(1 for x in answered if x <= 1.0),
        "answered": len(answered),
        "worst_s": round(max(answered), 3) if answered else None,
        "scrapes_ok": scrapes["ok"],
        "scrapes_failed": scrapes["failed"],
        "why": {k: v for k, v in scrapes.items() if k not in ("ok", "failed")},
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "storm":
        storm(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["old", "prom", "lars"])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=2000)
    parser.add_argument(
        "--max-connections", type=int, default=0, help="lars only; 0: ListenerLimits' default"
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    for kind in [args.only] if args.only else ["old", "prom", "lars"]:
        result = run(kind, args.seconds, args.concurrency, args.max_connections)
        print(json.dumps(result), flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
