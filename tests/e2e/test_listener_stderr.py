"""Clients that reset the metrics listener's connections early write nothing raw to the
daemon's stderr: with --log-format json every stderr line stays one JSON object.

Before (issue 19 item 4): each early reset made socketserver print a 25-line traceback
to stderr, outside logging, its rate limit and the JSON format (500 resets: 12,500 lines).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lars.dbengine import init_schema, make_engine
from tests.obs_util import get

pytestmark = pytest.mark.e2e

_URL = re.compile(r"metrics (?:on )?(http://[\d.]+:\d+)/metrics")


def _reset(port: int, data: bytes, wait_reply: bool) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if data:
            sock.sendall(data)
        if wait_reply:
            time.sleep(0.002)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # closed with linger 0: an RST instead of a FIN


# the console prints where it listens (one line by design), then logs like the daemons
_CONSOLE_URL = re.compile(r"lars console: listening on (http://[\d.]+:\d+)")


@pytest.mark.parametrize("daemon", ["reporter", "console"])
def test_early_resets_leave_no_traceback_on_stderr(tmp_path: Path, daemon: str) -> None:
    url = f"sqlite:///{tmp_path / 'lars.db'}"
    engine = make_engine(url)
    init_schema(engine)
    engine.dispose()
    err = tmp_path / "stderr.log"
    argv = [sys.executable, "-m", "lars", "--log-format", "json", daemon, "--db", url,
            "--ip", "127.0.0.1", "--port", "0"]  # fmt: skip
    if daemon != "console":
        argv += ["--metrics", "127.0.0.1:0"]
    pattern = _CONSOLE_URL if daemon == "console" else _URL
    env = {**os.environ, "LARS_CONSOLE_PASSWORD": "resets-password-1"}
    with open(err, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=fh, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (m := pattern.search(err.read_text(encoding="utf-8"))):
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        base = m.group(1)
        port = int(base.rsplit(":", 1)[1])
        big = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        for i in range(500):
            kind = i % 4
            if kind == 0:
                _reset(port, big, wait_reply=True)  # reset while the answer is written
            elif kind == 1:
                _reset(port, big, wait_reply=False)
            elif kind == 2:
                _reset(port, b"GET /metr", wait_reply=False)  # half a head
            else:
                _reset(port, b"", wait_reply=False)  # nothing at all
        for _ in range(5):  # garbage: a listener may log it (uvicorn does), in JSON
            _reset(port, b"\x00\x01 not http\r\n\r\n", wait_reply=True)
        assert get(base + "/healthz", timeout=30)[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = err.read_text(encoding="utf-8")
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if not _CONSOLE_URL.match(line)]
    assert len(lines) < 50, f"{len(lines)} stderr lines"
    for line in lines:
        json.loads(line)  # every line one JSON object: nothing raw
