"""The test proxy itself: freeze stalls both directions without closing, thaw resumes."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.proxy import CuttableProxy


def _echo_server() -> tuple[socket.socket, threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    while data := conn.recv(100):
                        conn.sendall(data)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def test_freeze_stalls_without_closing_and_thaw_delivers() -> None:
    server, thread = _echo_server()
    try:
        with (
            CuttableProxy(server.getsockname()) as proxy,
            socket.create_connection(proxy.address) as conn,
        ):
            conn.settimeout(1)
            conn.sendall(b"a")
            assert conn.recv(10) == b"a"
            proxy.freeze()
            time.sleep(0.1)
            conn.sendall(b"b")
            conn.settimeout(0.3)
            with pytest.raises(socket.timeout):
                conn.recv(10)
            proxy.thaw()
            conn.settimeout(2)
            assert conn.recv(10) == b"b"
    finally:
        server.close()
        thread.join(5)
