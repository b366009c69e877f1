"""Raw-socket UDP load for the LB agent: get_host + report pairs from N processes.

Each process owns one UDP socket and keeps `window` GetHostRequests in flight: for
every GetHostResponse it sends the ReportRequest for the host it got (SUCC) and the
next GetHostRequest. Requests are pre-encoded (only seq changes); the tool speaks the
wire directly, so it measures the agent, not a client library.

    python benchmarks/agent_load.py --base-port 8888 --procs 4 --seconds 10

Prints one JSON line: pairs/s (median of per-second totals), per-process counts,
answers by retcode, timeouts. `--no-reports` sends get_host only (then a "pair" is
one answered get_host).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import socket
import statistics
import struct
import time
from typing import Any

from lars.protocol import MsgId, lars_pb2

HEADER = struct.Struct("<ii")
GET_HOST = int(MsgId.GET_HOST_REQUEST)
REPORT = int(MsgId.REPORT_REQUEST)


def frame(msgid: int, body: bytes) -> bytes:
    return HEADER.pack(msgid, len(body)) + body


def worker(
    index: int, base: int, modules: list[tuple[int, int]], seconds: float, window: int,
    start_at: float, out: Any, reports_on: bool = True,
) -> None:  # fmt: skip
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.settimeout(1.0)
    # pre-encoded requests, one per (module, seq slot)
    seqs = 4096
    requests = [
        [
            (frame(GET_HOST, lars_pb2.GetHostRequest(seq=s + 1, modid=m, cmdid=c)
                   .SerializeToString()), ("127.0.0.1", base + (m + c) % 3))
            for s in range(seqs)
        ]
        for m, c in modules
    ]  # fmt: skip
    reports: dict[tuple[int, int, int, int], bytes] = {}
    rsp = lars_pb2.GetHostResponse()
    sendto = sock.sendto
    recv = sock.recv
    nmod = len(modules)
    codes: dict[int, int] = {}
    per_second: list[int] = []
    timeouts = 0
    i = index
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    next_tick = start_at + 1.0
    count = 0
    tick_count = 0
    for _ in range(window):
        data, addr = requests[i % nmod][i % seqs]
        sendto(data, addr)
        i += 1
    while True:
        try:
            data = recv(65536)
        except TimeoutError:
            timeouts += 1
            for _ in range(window):  # refill the window after losses
                req, addr = requests[i % nmod][i % seqs]
                sendto(req, addr)
                i += 1
            if time.time() >= end:
                break
            continue
        rsp.ParseFromString(data[8:])
        code = rsp.retcode
        if code == 0 and not reports_on:
            count += 1
        elif code == 0:
            h = rsp.host
            key = (rsp.modid, rsp.cmdid, h.ip, h.port)
            report = reports.get(key)
            if report is None:
                body = lars_pb2.ReportRequest(
                    modid=key[0], cmdid=key[1], host=lars_pb2.HostInfo(ip=key[2], port=key[3]),
                    retcode=0,
                ).SerializeToString()  # fmt: skip
                report = reports[key] = frame(REPORT, body)
            sendto(report, ("127.0.0.1", base + (key[0] + key[1]) % 3))
            count += 1
        else:
            codes[code] = codes.get(code, 0) + 1
        req, addr = requests[i % nmod][i % seqs]
        i += 1
        if count & 255 == 0 or code != 0:
            now = time.time()
            if now >= next_tick:
                per_second.append(count - tick_count)
                tick_count = count
                next_tick += 1.0
            if now >= end:
                break
        sendto(req, addr)
    sock.close()
    codes[0] = count
    out.put({"index": index, "pairs": count, "per_second": per_second, "codes": codes,
             "timeouts": timeouts})  # fmt: skip


def run(
    base: int,
    procs: int,
    seconds: float,
    modules: list[tuple[int, int]],
    window: int,
    reports_on: bool = True,
) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    out: Any = ctx.Queue()
    start_at = time.time() + 0.5 + 0.05 * procs
    ps = [
        ctx.Process(
            target=worker, args=(i, base, modules, seconds, window, start_at, out, reports_on)
        )
        for i in range(procs)
    ]
    for p in ps:
        p.start()
    results = [out.get(timeout=seconds + 60) for _ in ps]
    for p in ps:
        p.join()
    width = min(len(r["per_second"]) for r in results)
    totals = [sum(r["per_second"][k] for r in results) for k in range(width)]
    total_pairs = sum(r["pairs"] for r in results)
    codes: dict[str, int] = {}
    for r in results:
        for code, n in r["codes"].items():
            codes[str(code)] = codes.get(str(code), 0) + n
    return {
        "procs": procs,
        "window": window,
        "reports": reports_on,
        "seconds": seconds,
        "pairs_per_s_median": statistics.median(totals) if totals else total_pairs / seconds,
        "pairs_per_s_mean": total_pairs / seconds,
        "per_second": totals,
        "answers_by_retcode": codes,
        "timeouts": sum(r["timeouts"] for r in results),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-port", type=int, default=8888)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--modules", type=int, default=10, help="modules 1..N (cmdid 1)")
    ap.add_argument("--window", type=int, default=1, help="requests in flight per process")
    ap.add_argument("--no-reports", action="store_true", help="get_host only")
    args = ap.parse_args()
    mods = [(m, 1) for m in range(1, args.modules + 1)]
    result = run(args.base_port, args.procs, args.seconds, mods, args.window, not args.no_reports)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
