"""lars.client.signals: handlers installed whatever was inherited, restored after;
die_with_parent leaves at once when the parent is already gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lars.client.signals import STOP_SIGNALS, parent_gone, stop_on_signals, tool


def test_signals_raise_keyboard_interrupt_inside_and_handlers_come_back() -> None:
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        for sig in STOP_SIGNALS:
            with pytest.raises(KeyboardInterrupt), stop_on_signals():
                os.kill(os.getpid(), sig)
                time.sleep(5)  # the handler interrupts it at once
            assert signal.getsignal(sig) is signal.SIG_IGN  # the inherited one, restored
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_tool_wraps_a_command() -> None:
    @tool
    def command(x: int) -> int:
        assert signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.SIG_DFL)
        return x + 1

    assert command(1) == 2


def test_a_worker_whose_parent_is_gone_exits_at_once() -> None:
    assert not parent_gone(os.getppid())
    code = (
        "from lars.client.signals import die_with_parent\n"
        "die_with_parent(1)\n"  # pid 1 is not our parent: as if re-parented already
        "print('still running')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "still running" not in out.stdout
