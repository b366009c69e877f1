"""A userspace netem: forwards Ethernet frames between two veth ends with delay and loss.

Why it exists: the CI VM's kernel has no sch_netem (`tc qdisc add ... netem` answers
"Specified qdisc kind is unknown") and no module tree to load it from, so the harness does
netem's job here. Each host link is `ns eth0 <-> A` and `B <-> bridge`; the wire copies
frames A <-> B through AF_PACKET sockets. PACKET_VNET_HDR makes the kernel hand over (and
take back) the checksum-offload and GSO metadata with every frame, so partial checksums are
completed on the way out exactly as a bridge would.

Faults are rules per link, set by commands on stdin (one JSON object a line, each answered
with one line "ok ..." on stdout, so the caller knows it is in force):
  {"op": "link", "name": "h1", "a": IFACE, "b": IFACE}      start forwarding a link
  {"op": "set", "name": "h1", "delay": 0.05, "loss": 0.02, "peer": "10.x.y.4" | null}
  {"op": "clear", "name": "h1"}                              forward everything again
  {"op": "stats"}                                            counters as JSON
A rule with `peer` only touches IPv4 packets from or to that address (the link of a server
that lives on the bridge); without it, every frame, ARP included. Delay applies to each
direction (a 50 ms link gives 100 ms more RTT), loss to each frame independently, and
loss 1.0 makes the path silent (packets vanish, nothing is refused or reset). Frames keep
their order in each direction while the delay is constant, as netem's do.

Run as `python tests/multihost/wire.py` in the root namespace; it exits on stdin EOF, so it
never outlives the harness that feeds it.
"""

from __future__ import annotations

import heapq
import json
import os
import random
import select
import socket
import sys
import time
from dataclasses import dataclass, field

ETH_P_ALL = 3
SOL_PACKET = 263
PACKET_VNET_HDR = 15
VNET_HDR = 10  # struct virtio_net_hdr in front of every frame
MAX_FRAME = 65536 + VNET_HDR


@dataclass
class Rule:
    delay: float = 0.0
    loss: float = 0.0
    peer: bytes | None = None  # packed IPv4, or None for the whole link


@dataclass
class Link:
    name: str
    socks: tuple[socket.socket, socket.socket]
    rules: list[Rule] = field(default_factory=list)
    forwarded: int = 0
    dropped: int = 0
    delayed: int = 0

    def verdict(self, frame: bytes, rng: random.Random) -> float | None:
        """Seconds to hold the frame, or None to drop it."""
        for rule in self.rules:
            if rule.peer is not None and not _touches(frame, rule.peer):
                continue
            if rule.loss and rng.random() < rule.loss:
                return None
            return rule.delay
        return 0.0


def _touches(frame: bytes, peer: bytes) -> bool:
    eth = VNET_HDR
    if len(frame) < eth + 34 or frame[eth + 12 : eth + 14] != b"\x08\x00":
        return False
    ip = eth + 14
    return frame[ip + 12 : ip + 16] == peer or frame[ip + 16 : ip + 20] == peer


def _open(iface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((iface, ETH_P_ALL))
    sock.setblocking(False)
    return sock


class Wire:
    def __init__(self) -> None:
        self.links: dict[str, Link] = {}
        self.peer_of: dict[socket.socket, tuple[Link, socket.socket]] = {}
        self.queue: list[tuple[float, int, socket.socket, bytes]] = []
        self.seq = 0
        self.rng = random.Random(0x1A125)
        self.send_errors = 0

    def command(self, line: str) -> str:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "link":
            a, b = _open(cmd["a"]), _open(cmd["b"])
            link = Link(cmd["name"], (a, b))
            self.links[link.name] = link
            self.peer_of[a] = (link, b)
            self.peer_of[b] = (link, a)
        elif op == "set":
            peer = socket.inet_aton(cmd["peer"]) if cmd.get("peer") else None
            link = self.links[cmd["name"]]
            link.rules = [r for r in link.rules if r.peer != peer]
            rule = Rule(float(cmd.get("delay", 0.0)), float(cmd.get("loss", 0.0)), peer)
            # peer rules first: they are the more specific ones
            link.rules.insert(0 if peer is not None else len(link.rules), rule)
        elif op == "clear":
            self.links[cmd["name"]].rules = []
        elif op == "stats":
            stats = {
                n: {"forwarded": lk.forwarded, "dropped": lk.dropped, "delayed": lk.delayed}
                for n, lk in self.links.items()
            }
            return "ok " + json.dumps({"links": stats, "send_errors": self.send_errors})
        else:
            raise ValueError(f"unknown op {op!r}")
        return "ok"

    def receive(self, sock: socket.socket, now: float) -> None:
        link, out = self.peer_of[sock]
        for _ in range(256):
            try:
                frame, addr = sock.recvfrom(MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the interface went down or away: nothing to forward
                return
            if addr[2] == socket.PACKET_OUTGOING:  # our own send, seen on the way out
                continue
            hold = link.verdict(frame, self.rng)
            if hold is None:
                link.dropped += 1
            elif hold <= 0 and not self.queue:
                self.send(out, frame)
                link.forwarded += 1
            else:
                self.seq += 1
                heapq.heappush(self.queue, (now + hold, self.seq, out, frame))
                link.forwarded += 1
                link.delayed += hold > 0

    def send(self, out: socket.socket, frame: bytes) -> None:
        try:
            out.send(frame)
        except OSError:  # link down or buffer full: the frame is lost, as on a wire
            self.send_errors += 1

    def release(self, now: float) -> float | None:
        """Send every frame that is due; seconds until the next one (None: none held)."""
        queue = self.queue
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            self.send(out, frame)
        return max(0.0, queue[0][0] - now) if queue else None

    def run(self) -> None:
        stdin = sys.stdin.fileno()
        buf = b""
        while True:
            now = time.monotonic()
            wait = self.release(now)
            readable, _, _ = select.select([stdin, *self.peer_of], [], [], wait)
            now = time.monotonic()
            for fd in readable:
                if fd == stdin:
                    chunk = os.read(stdin, 65536)
                    if not chunk:
                        return
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        try:
                            reply = self.command(line.decode())
                        except Exception as exc:
                            reply = f"error {type(exc).__name__}: {exc}"
                        sys.stdout.write(reply + "\n")
                        sys.stdout.flush()
                else:
                    self.receive(fd, now)


if __name__ == "__main__":
    Wire().run()
