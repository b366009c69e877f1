"""Writes the seed corpus under tests/fuzz/corpus (committed; run by hand to refresh it).

    python -m tests.fuzz.make_corpus

Seeds are valid inputs of each decoder (frames and datagrams of every msgid the daemons
and the client accept, protobuf bodies, Lars INI files, HTTP request heads and query
strings); the fuzz tests mutate them. New seeds may be added by hand: any file in a
corpus directory is used.
"""

from __future__ import annotations

import re
from pathlib import Path

from lars.protocol import MsgId, lars_pb2
from lars.reactor import encode

CORPUS = Path(__file__).resolve().parent / "corpus"
ROOT = Path(__file__).resolve().parents[2]
UNKNOWN = b"\xf8\x07\x01"  # field 127, varint 1: what a newer peer's optional field looks like


def bodies() -> dict[str, bytes]:
    host = lars_pb2.HostInfo(ip=-1062731519, port=9001)
    inst = lars_pb2.Instance(modid=11, cmdid=1, ip=167772167, port=8080, check="tcp", passing=True)
    return {
        "GetRouteRequest": lars_pb2.GetRouteRequest(modid=1, cmdid=2).SerializeToString(),
        "GetRouteResponse": lars_pb2.GetRouteResponse(
            modid=1, cmdid=2, host=[host, lars_pb2.HostInfo(ip=1, port=80)]
        ).SerializeToString(),
        "ReportStatusRequest": lars_pb2.ReportStatusRequest(
            modid=1,
            cmdid=2,
            caller=167772161,
            ts=1_800_000_000,
            results=[
                lars_pb2.HostCallResult(ip=-1062731519, port=9001, succ=10, err=1, overload=False)
            ],
        ).SerializeToString(),
        "GetHostRequest": lars_pb2.GetHostRequest(seq=7, modid=1, cmdid=2).SerializeToString(),
        "GetHostResponse": lars_pb2.GetHostResponse(
            seq=7, modid=1, cmdid=2, retcode=0, host=host
        ).SerializeToString(),
        "ReportRequest": lars_pb2.ReportRequest(
            modid=1, cmdid=2, host=host, retcode=0
        ).SerializeToString(),
        "InstanceSync": lars_pb2.InstanceSync(
            agent="10.0.0.7:8888", instances=[inst], seq=3
        ).SerializeToString(),
        "InstanceSyncAck": lars_pb2.InstanceSyncAck(seq=3, lease=30).SerializeToString(),
        "RegisterRequest": lars_pb2.RegisterRequest(
            seq=1, op=1, instance=inst, interval_ms=1000
        ).SerializeToString(),
        "RegisterResponse": lars_pb2.RegisterResponse(seq=1, retcode=0).SerializeToString(),
    }


MSGIDS = {
    "GetRouteRequest": MsgId.GET_ROUTE_REQUEST,
    "GetRouteResponse": MsgId.GET_ROUTE_RESPONSE,
    "ReportStatusRequest": MsgId.REPORT_STATUS_REQUEST,
    "GetHostRequest": MsgId.GET_HOST_REQUEST,
    "GetHostResponse": MsgId.GET_HOST_RESPONSE,
    "ReportRequest": MsgId.REPORT_REQUEST,
    "InstanceSync": MsgId.INSTANCE_SYNC,
    "InstanceSyncAck": MsgId.INSTANCE_SYNC_ACK,
    "RegisterRequest": MsgId.REGISTER_REQUEST,
    "RegisterResponse": MsgId.REGISTER_RESPONSE,
}


def write(kind: str, name: str, data: bytes) -> None:
    path = CORPUS / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main() -> None:
    for name, body in bodies().items():
        write("bodies", f"{name}.bin", body)
        write("bodies", f"{name}-unknown.bin", body + UNKNOWN)
        msgid = int(MSGIDS[name])
        write("frames", f"{name}.bin", encode(msgid, body))
    api = lars_pb2.GetRouteRequest(modid=1, cmdid=2).SerializeToString()
    write("frames", "ApiGetRouteRequest.bin", encode(int(MsgId.API_GET_ROUTE_REQUEST), api))
    # a TCP stream: several frames back to back
    b = bodies()
    stream = b"".join(encode(int(MSGIDS[n]), b[n]) for n in ("GetRouteRequest",) * 3)
    write("streams", "get-route-x3.bin", stream)
    write("streams", "report-status-x2.bin", encode(3, b["ReportStatusRequest"]) * 2)
    write(
        "streams",
        "instance-sync.bin",
        encode(9, b["InstanceSync"]) + encode(1, b["GetRouteRequest"]),
    )
    # INI: the sample configs with every key set to its default
    for conf in sorted((ROOT / "deploy").glob("*.conf")):
        text = re.sub(r"^;(\w+ *=)", r"\1", conf.read_text(), flags=re.M)
        write("ini", conf.name, text.encode())
    write("ini", "console.conf", b"[console]\nip = 127.0.0.1\nport = 7780\nstale_after = 60\n"
          b"refresh_interval = 5\nsession_ttl = 28800\n[mysql]\ndb_host = 127.0.0.1\n"
          b"db_port = 3306\ndb_name = lars\ndb_user = root\ndb_passwd =\n[metrics]\n"
          b"listen = 127.0.0.1:7781\n")  # fmt: skip
    # HTTP heads and query strings of the listeners
    heads = {
        "healthz.txt": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "metrics.txt": b"GET /metrics HTTP/1.0\r\nAccept: text/plain\r\n\r\n",
        "module.txt": b"GET /debug/module?modid=1&cmdid=2 HTTP/1.1\r\nHost: x\r\n\r\n",
        "head.txt": b"HEAD /readyz HTTP/1.1\r\n\r\n",
        "lf.txt": b"GET /status HTTP/1.1\n\n",
    }
    for name, head in heads.items():
        write("http", name, head)
    queries = {
        "module.txt": b"modid=1&cmdid=2",
        "history.txt": b"modid=1&cmdid=2&limit=100&before=5",
        "modules.txt": b"q=pay",
        "escaped.txt": b"modid=%31&cmdid=%C2%B2",
    }
    for name, query in queries.items():
        write("query", name, query)


if __name__ == "__main__":
    main()
