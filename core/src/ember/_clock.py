"""Clocks for the streaming scheduler: the system clock, and a manual clock for tests.

Times are integer milliseconds since the epoch (batch times are multiples of the batch
interval). ``wait_until`` returns early when the given stop event is set, so stopping a
context never waits for the next tick.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(ABC):
    """A source of the current time in milliseconds, and a way to wait for a later time."""

    @abstractmethod
    def now_ms(self) -> int:
        """The current time in milliseconds."""

    @abstractmethod
    def wait_until(self, target_ms: int, stop: threading.Event) -> bool:
        """Block until the time is at least ``target_ms``; ``False`` if ``stop`` was set first."""


class SystemClock(Clock):
    """Wall-clock time."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def wait_until(self, target_ms: int, stop: threading.Event) -> bool:
        while True:
            remaining = target_ms - self.now_ms()
            if remaining <= 0:
                return not stop.is_set()
            if stop.wait(remaining / 1000.0):
                return False


class ManualClock(Clock):
    """A clock that moves only when told to: tests advance it and batches run at once.

    >>> clock = ManualClock()
    >>> clock.advance(1.5)
    >>> clock.now_ms()
    1500

    :param start: the starting time in seconds (default 0).
    """

    def __init__(self, start: float = 0.0) -> None:
        self._ms = round(start * 1000)
        self._cond = threading.Condition()
        self._stops: list[threading.Event] = []

    def now_ms(self) -> int:
        with self._cond:
            return self._ms

    def time(self) -> float:
        """The current time in seconds."""
        return self.now_ms() / 1000.0

    def advance(self, seconds: float) -> None:
        """Move the time forward by ``seconds`` and wake everything waiting for it."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back in time (advance by {seconds!r})")
        with self._cond:
            self._ms += round(seconds * 1000)
            self._cond.notify_all()

    def set_time(self, seconds: float) -> None:
        """Set the time (not earlier than now) and wake everything waiting for it."""
        ms = round(seconds * 1000)
        with self._cond:
            if ms < self._ms:
                raise ValueError(f"a clock cannot go back in time ({ms} ms < {self._ms} ms)")
            self._ms = ms
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake the waiters so they notice a stop event."""
        with self._cond:
            self._cond.notify_all()

    def wait_until(self, target_ms: int, stop: threading.Event) -> bool:
        with self._cond:
            while self._ms < target_ms:
                if stop.is_set():
                    return False
                self._cond.wait(0.5)  # re-checks the stop event at least twice a second
            return not stop.is_set()
