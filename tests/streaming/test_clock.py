"""The clocks batches follow: ManualClock (moved by tests) and SystemClock (wall time).

Waiting threads meet on Events with timeouts; nothing sleeps.
"""

from __future__ import annotations

import threading
import time

import pytest
from ember._clock import SystemClock
from ember.testing import ManualClock

WAIT = 30


def waiter(clock, target_ms: int, stop: threading.Event):
    """Run ``clock.wait_until`` in a thread; returns (thread, results list, started event)."""
    results: list[bool] = []
    started = threading.Event()

    def run() -> None:
        started.set()
        results.append(clock.wait_until(target_ms, stop))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(WAIT)
    return thread, results


def test_manual_clock_starts_where_told_and_moves_only_when_told():
    assert ManualClock().now_ms() == 0
    clock = ManualClock(start=12.5)
    assert clock.now_ms() == 12_500
    assert clock.time() == 12.5
    clock.advance(1.25)
    assert clock.now_ms() == 13_750
    clock.advance(0)
    assert clock.now_ms() == 13_750
    clock.set_time(20)
    assert clock.now_ms() == 20_000
    clock.set_time(20)  # the same time is fine
    assert clock.now_ms() == 20_000


def test_manual_clock_cannot_go_back():
    clock = ManualClock(start=5)
    with pytest.raises(ValueError, match="cannot go back in time"):
        clock.advance(-0.001)
    with pytest.raises(ValueError, match=r"cannot go back in time \(4000 ms < 5000 ms\)"):
        clock.set_time(4)
    assert clock.now_ms() == 5000


def test_manual_clock_wait_until_a_past_time_returns_at_once():
    clock = ManualClock(start=10)
    stop = threading.Event()
    assert clock.wait_until(10_000, stop) is True
    assert clock.wait_until(3_000, stop) is True
    stop.set()
    assert clock.wait_until(3_000, stop) is False  # stopped wins


def test_manual_clock_wait_until_wakes_when_the_time_is_reached():
    clock = ManualClock()
    stop = threading.Event()
    thread, results = waiter(clock, 2000, stop)
    clock.advance(1)
    thread.join(0.05)
    assert thread.is_alive() and results == []  # 1000 ms: still waiting
    clock.set_time(2.5)
    thread.join(WAIT)
    assert results == [True]


def test_manual_clock_wait_until_returns_false_when_stopped():
    clock = ManualClock()
    stop = threading.Event()
    thread, results = waiter(clock, 10_000, stop)
    stop.set()
    clock.wake()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert results == [False]
    assert clock.now_ms() == 0


def test_manual_clock_notices_a_stop_even_without_a_wake():
    clock = ManualClock()
    stop = threading.Event()
    thread, results = waiter(clock, 10_000, stop)
    stop.set()
    thread.join(5)  # it re-checks the stop event at least twice a second
    assert results == [False]


def test_system_clock_is_wall_time():
    clock = SystemClock()
    before = time.time() * 1000
    now = clock.now_ms()
    after = time.time() * 1000
    assert before - 1 <= now <= after + 1


def test_system_clock_wait_until_returns_at_the_target():
    clock = SystemClock()
    stop = threading.Event()
    target = clock.now_ms() + 50
    assert clock.wait_until(target, stop) is True
    assert clock.now_ms() >= target
    assert clock.wait_until(clock.now_ms() - 1000, stop) is True  # the past: at once


def test_system_clock_wait_until_returns_early_on_stop():
    clock = SystemClock()
    stop = threading.Event()
    start = time.monotonic()
    thread, results = waiter(clock, clock.now_ms() + 3_600_000, stop)  # an hour away
    stop.set()
    thread.join(WAIT)
    assert results == [False]
    assert time.monotonic() - start < WAIT
    assert clock.wait_until(clock.now_ms() - 1, stop) is False  # stopped, even when due
