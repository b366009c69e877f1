"""What a console request pays to be authorised, per kind of credential (issue 21).

A live ConsoleServer on loopback (SQLite, one module) answers GET /api/versions (a cheap
read) over one keep-alive connection per credential, in turns:

  bootstrap  the configured admin's session cookie (no database read to authorise)
  account    a database account's session cookie (its role read per request)
  token      Authorization: Bearer (its SHA-256 digest looked up per request)

and, for scale, one scrypt password check (what a per-request password hash would cost).
Reported: median and p90 request latency per credential over `--requests` each, their
ratio to the bootstrap session, and the scrypt check's median.

    python benchmarks/console_auth.py                 # 2,000 requests each
    python benchmarks/console_auth.py --requests 500
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests

from lars.accounts import AccountStore, PasswordHash, Role
from lars.console import ConsoleServer, build_console
from lars.dbengine import init_schema, make_engine
from lars.routes.admin import RouteAdmin

PASSWORD = "bench-password-1"


def _timed(session: requests.Session, url: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = session.get(url, timeout=30)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'lars.db'}")
        init_schema(engine)
        RouteAdmin(engine).add_host(1, 1, "10.0.0.1", 80)
        store = AccountStore(engine)
        store.add_user("alice", Role.VIEWER, PASSWORD, by="bench")
        token = store.create_token("bench", Role.VIEWER, by="bench")
        server = ConsoleServer(build_console(engine, PASSWORD), "127.0.0.1", 0)
        server.start()
        sessions: dict[str, requests.Session] = {}
        try:
            for name, body in (
                ("bootstrap", {"password": PASSWORD}),
                ("account", {"user": "alice", "password": PASSWORD}),
            ):
                s = requests.Session()
                assert s.post(f"{server.url}/api/login", json=body, timeout=30).status_code == 200
                sessions[name] = s
            sessions["token"] = requests.Session()
            sessions["token"].headers["Authorization"] = f"Bearer {token}"
            url = f"{server.url}/api/versions"
            results: dict[str, list[float]] = {k: [] for k in sessions}
            for _ in range(10):  # interleaved rounds, so load changes hit all three alike
                for name, s in sessions.items():
                    results[name] += _timed(s, url, args.requests // 10)
        finally:
            for s in sessions.values():
                s.close()
            server.stop()
            engine.dispose()
    hashed = PasswordHash(PASSWORD)
    scrypt = []
    for _ in range(20):
        start = time.perf_counter()
        hashed.verify(PASSWORD)
        scrypt.append(time.perf_counter() - start)
    base = statistics.median(results["bootstrap"])
    for name, samples in results.items():
        med = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(
            f"{name:10s} median {med * 1000:6.2f} ms  p90 {p90 * 1000:6.2f} ms  x{med / base:4.2f}"
        )
    print(f"scrypt     median {statistics.median(scrypt) * 1000:6.2f} ms per password check")


if __name__ == "__main__":
    main()
