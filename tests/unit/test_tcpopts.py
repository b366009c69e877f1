"""lars/reactor/tcpopts.py: the options reach the socket where the kernel has them."""

from __future__ import annotations

import socket
import sys

import pytest

from lars.reactor.tcpopts import TCP_RTO_MIN_US, set_rto_min, set_user_timeout


@pytest.mark.skipif(sys.platform != "linux", reason="Linux TCP options")
def test_user_timeout_is_set_in_milliseconds() -> None:
    with socket.socket() as sock:
        assert set_user_timeout(sock, 3.0)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 3000


@pytest.mark.skipif(sys.platform != "linux", reason="Linux TCP options")
def test_rto_min_is_set_where_the_kernel_has_it() -> None:
    with socket.socket() as sock:
        if not set_rto_min(sock, 0.05):
            pytest.skip(f"this kernel ({' '.join(__import__('os').uname()[2:3])}) has no "
                        "TCP_RTO_MIN_US (Linux 6.15+): nothing to check")  # fmt: skip
        value = sock.getsockopt(socket.IPPROTO_TCP, TCP_RTO_MIN_US)
        assert 50_000 <= value < 60_000  # rounded up to a jiffy


def test_a_closed_socket_is_refused_quietly() -> None:
    sock = socket.socket()
    sock.close()
    assert set_user_timeout(sock, 1.0) is False
    assert set_rto_min(sock, 0.05) is False
