"""The agent's route-service heartbeat core (lars/agent/liveness.py) on plain times."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lars.agent.liveness import Action, Heartbeat


def test_probes_when_idle_and_declares_dead_once() -> None:
    hb = Heartbeat(0.25, 0.75)
    assert hb.period == 0.125
    assert hb.tick(0.0) is Action.NONE  # not connected: nothing to probe
    hb.connected(10.0)
    actions = [hb.tick(10.0 + i * 0.125) for i in range(1, 8)]
    assert actions == [
        Action.NONE, Action.PROBE, Action.NONE, Action.PROBE, Action.NONE, Action.DEAD,
        Action.NONE,  # one DEAD per connection
    ]  # fmt: skip
    assert (hb.probes, hb.deaths) == (2, 1)


def test_anything_heard_keeps_the_connection() -> None:
    hb = Heartbeat(0.25, 0.75)
    hb.connected(0.0)
    for i in range(1, 100):
        now = i * 0.125
        assert hb.tick(now) is not Action.DEAD
        hb.heard(now)  # a probe's answer or a push


def test_a_late_tick_is_our_stall_not_the_peers_silence() -> None:
    hb = Heartbeat(0.25, 0.75)
    hb.connected(0.0)
    assert hb.tick(0.25) is Action.PROBE
    assert hb.tick(3.0) is Action.PROBE  # 2.75 s without running: no verdict yet
    assert hb.stalls == 1
    assert hb.tick(3.125) is Action.NONE
    assert hb.tick(3.25) is Action.PROBE
    assert hb.tick(3.375) is Action.NONE
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
def test_silence_is_noticed_within_half_an_interval_of_dead_after(
    interval: float, ratio: float, phase: float
) -> None:
    """Ticking every `period` from any phase, a silent peer is declared dead no later
    than dead_after + period after the last frame, never before dead_after, and probed
    at most once per interval meanwhile."""
    hb = Heartbeat(interval, interval * ratio)
    hb.connected(0.0)
    now = phase * hb.period
    probes: list[float] = []
    while (action := hb.tick(now)) is not Action.DEAD:
        if action is Action.PROBE:
            probes.append(now)
        now += hb.period
        assert now <= hb.dead_after + 2 * hb.period
    assert hb.dead_after <= now <= hb.dead_after + hb.period + 1e-9
    assert all(b - a >= interval * 0.9 - 1e-9 for a, b in itertools.pairwise(probes))
