"""A TCP proxy a test controls, to cut a daemon off from its database or peer.

`cut()` drops every proxied connection and refuses new ones; `restore()` lets them
through again. `freeze()` makes the path go silent without closing anything, like a
partition or a hung server: bytes are neither forwarded nor read, new connections are
accepted (the TCP handshake completes) but never connected upstream until `thaw()`.
The shared MariaDB server is never stopped; only our path to it is.
"""

from __future__ import annotations

import selectors
import socket
import threading


class CuttableProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._blocked = False
        self._frozen = False
        self._held: list[socket.socket] = []  # accepted while frozen, not yet connected
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name="test-proxy", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def __enter__(self) -> CuttableProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cut(self) -> None:
        with self._lock:
            self._blocked = True
        self._wake_w.send(b"c")

    def restore(self) -> None:
        with self._lock:
            self._blocked = False

    def freeze(self) -> None:
        with self._lock:
            self._frozen = True
        self._wake_w.send(b"f")

    def thaw(self) -> None:
        with self._lock:
            self._frozen = False
        self._wake_w.send(b"t")

    def close(self) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join(5)
        self._drop_all()
        self._sel.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def _drop_all(self) -> None:
        for sock in list(self._peers):
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
        self._peers.clear()
        for sock in self._held:
            sock.close()
        self._held.clear()

    def _run(self) -> None:
        watching = True  # peers registered with the selector (False while frozen)
        while not self._stop.is_set():
            for key, _ in self._sel.select(0.2):
                if key.data == "wake":
                    self._wake_r.recv(64)
                    with self._lock:
                        blocked, frozen = self._blocked, self._frozen
                    if blocked:
                        self._drop_all()
                    if frozen and watching:  # stop reading: the peers' sends stall
                        for sock in self._peers:
                            self._sel.unregister(sock)
                        watching = False
                    elif not frozen and not watching:
                        for sock in self._peers:
                            self._sel.register(sock, selectors.EVENT_READ, None)
                        watching = True
                    if not frozen and self._held:
                        held, self._held = self._held, []
                        for client in held:
                            self._connect(client)
                    continue
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                else:
                    self._pump(sock)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        with self._lock:
            blocked, frozen = self._blocked, self._frozen
        if blocked:
            client.close()
            return
        if frozen:
            self._held.append(client)
            return
        self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=2)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setblocking(False)
            self._sel.register(s, selectors.EVENT_READ, None)
        self._peers[client] = upstream
        self._peers[upstream] = client

    def _pump(self, sock: socket.socket) -> None:
        other = self._peers.get(sock)
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data or other is None:
            self._close_pair(sock)
            return
        try:
            other.setblocking(True)
            other.sendall(data)
            other.setblocking(False)
        except OSError:
            self._close_pair(sock)

    def _close_pair(self, sock: socket.socket) -> None:
        other = self._peers.pop(sock, None)
        for s in (sock, other):
            if s is None:
                continue
            self._peers.pop(s, None)
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
