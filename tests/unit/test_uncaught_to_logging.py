"""Python's last-resort reports (an exception escaping a thread, one raised in __del__)
go through logging in the configured format, not raw to stderr (issue 19 item 4)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import threading
from lars.obs.logs import configure_logging
configure_logging("INFO", "json", daemon="test")

def boom():
    raise RuntimeError("worker failed")

for _ in range(3):  # rate-limited: one line
    t = threading.Thread(target=boom, name="test-worker")
    t.start()
    t.join()

class Bad:
    def __del__(self):
        raise ValueError("in del")

Bad()
"""


def test_thread_and_unraisable_exceptions_are_json_log_lines() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    lines = out.stderr.splitlines()
    docs = [json.loads(line) for line in lines]  # every stderr line one JSON object
    assert [d["logger"] for d in docs] == ["lars.uncaught", "lars.uncaught"], out.stderr
    assert "thread test-worker ended by RuntimeError: worker failed" in docs[0]["message"]
    assert "RuntimeError: worker failed" in docs[0]["exception"]  # the traceback, inside
    assert "ValueError: in del" in docs[1]["message"]
