"""The agent's route-service heartbeat core (lars/agent/liveness.py) on plain times."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lars.agent.liveness import Action, Heartbeat


def test_probes_when_idle_and_declares_dead_once() -> None:
    hb = Heartbeat(0.25, 0.75)
    assert hb.tick(0.0) is Action.NONE  # not connected: nothing to probe
    hb.connected(10.0)
    assert hb.tick(10.1) is Action.NONE
    assert hb.tick(10.25) is Action.PROBE
    assert hb.tick(10.5) is Action.PROBE
    assert hb.tick(10.75) is Action.DEAD
    assert hb.tick(11.0) is Action.NONE  # one DEAD per connection
    assert (hb.probes, hb.deaths) == (2, 1)


def test_anything_heard_keeps_the_connection() -> None:
    hb = Heartbeat(0.25, 0.75)
    hb.connected(0.0)
    for i in range(1, 100):
        now = i * 0.25
        assert hb.tick(now) is not Action.DEAD
        hb.heard(now)  # a probe's answer or a push


def test_a_late_tick_is_our_stall_not_the_peers_silence() -> None:
    hb = Heartbeat(0.25, 0.75)
    hb.connected(0.0)
    assert hb.tick(0.25) is Action.PROBE
    assert hb.tick(3.0) is Action.PROBE  # 2.75 s without running: no verdict yet
    assert hb.stalls == 1
    assert hb.tick(3.25) is Action.PROBE
    assert hb.tick(3.5) is Action.DEAD  # still nothing once we run again: dead


def test_disconnected_stops_probing_and_heard_does_not_reconnect() -> None:
    hb = Heartbeat(0.25, 0.75)
    hb.connected(0.0)
    hb.disconnected()
    hb.heard(0.1)  # a late frame of the old connection
    assert hb.tick(5.0) is Action.NONE


@pytest.mark.parametrize(("interval", "dead"), [(0, 1), (-1, 1), (1, 1), (1, 0.5)])
def test_invalid_settings(interval: float, dead: float) -> None:
    with pytest.raises(ValueError):
        Heartbeat(interval, dead)


@given(st.floats(0.05, 2.0), st.floats(1.5, 5.0), st.floats(0.0, 1.0))
def test_silence_is_noticed_within_dead_after_plus_one_tick(
    interval: float, ratio: float, phase: float
) -> None:
    """Ticking every `interval` from any phase, a silent peer is declared dead no later
    than dead_after + interval after the last frame, and never before dead_after."""
    hb = Heartbeat(interval, interval * ratio)
    hb.connected(0.0)
    now = phase * interval
    while hb.tick(now) is not Action.DEAD:
        now += interval
        assert now <= hb.dead_after + 2 * interval
    assert hb.dead_after <= now <= hb.dead_after + interval + 1e-9
