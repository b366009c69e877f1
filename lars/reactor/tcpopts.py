"""TCP socket options for lossy or silent paths (Linux; elsewhere they do nothing).

- `set_user_timeout`: TCP_USER_TIMEOUT, abort the connection once sent data stays
  unacknowledged this long. Without it a peer whose packets vanish keeps a connection
  "established" for the ~15 minutes of the kernel's retransmissions.
- `set_rto_min`: TCP_RTO_MIN_US (Linux 6.15+), the floor of the retransmission timeout.
  The kernel's default floor, 200 ms, dominates the tail of anything sent once over a
  lossy link: with 50 ms delay each way and 2 % loss a lost route push arrived 0.35-0.48 s
  after its commit; with a 50 ms floor 0.27 s (tests/multihost, scenario 4). The timeout
  still grows with the measured RTT (srtt + 4 x rttvar), so slow links are not flooded.
Both return whether the kernel took the option.
"""

from __future__ import annotations

import socket

__all__ = ["set_rto_min", "set_user_timeout"]

TCP_RTO_MIN_US = 45  # include/uapi/linux/tcp.h (6.15); not in Python's socket module yet


def set_user_timeout(sock: socket.socket, seconds: float) -> bool:
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, int(seconds * 1000))
    except OSError:
        return False
    return True


def set_rto_min(sock: socket.socket, seconds: float) -> bool:
    if not hasattr(socket, "TCP_USER_TIMEOUT"):  # not Linux
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MIN_US, int(seconds * 1_000_000))
    except OSError:  # an older kernel: its 200 ms floor stays
        return False
    return True
