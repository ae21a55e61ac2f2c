"""A harness for testing a source end to end: a StreamingContext on a manual clock whose
output batches are kept, and a listener recording what the receivers reported.

Source plugins' tests build on it (subclass :class:`StreamHarness` for helpers of their own)::

    t = StreamHarness("local[2]")
    t.collect(ssc_stream_of(t.ssc))
    t.start()
    assert t.run_until_records(100) == expected
    t.stop()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ember._clock import ManualClock
from ember.conf import Conf
from ember.context import Context
from ember.streaming import StreamingContext, StreamingListener

__all__ = ["ReceiverEvents", "StreamHarness"]

#: Seconds a harness wait takes at most unless told otherwise.
WAIT = 30.0


class ReceiverEvents(StreamingListener):
    """What listeners saw: receivers started, failing and stopped, and completed batches.

    Each list holds the events' ``receiverInfo()`` (``batchInfo()`` for :attr:`batches`);
    :attr:`started_at` holds the ``time.monotonic()`` of each start.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.started: list[Any] = []
        self.started_at: list[float] = []
        self.errors: list[Any] = []
        self.stopped: list[Any] = []
        self.batches: list[Any] = []

    def _add(self, kind: list[Any], item: Any) -> None:
        with self._cond:
            kind.append(item)
            self._cond.notify_all()

    def onReceiverStarted(self, receiverStarted: Any) -> None:
        """Record a start (and its time)."""
        with self._cond:
            self.started_at.append(time.monotonic())
        self._add(self.started, receiverStarted.receiverInfo())

    def onReceiverError(self, receiverError: Any) -> None:
        """Record an error."""
        self._add(self.errors, receiverError.receiverInfo())

    def onReceiverStopped(self, receiverStopped: Any) -> None:
        """Record a stop."""
        self._add(self.stopped, receiverStopped.receiverInfo())

    def onBatchCompleted(self, batchCompleted: Any) -> None:
        """Record a completed batch."""
        self._add(self.batches, batchCompleted.batchInfo())

    def error_messages(self) -> list[str]:
        """The ``lastErrorMessage()`` of every error so far."""
        with self._cond:
            return [info.lastErrorMessage() for info in self.errors]

    def wait(self, what: Callable[[], Any], description: str, timeout: float = WAIT) -> None:
        """Wait until ``what()`` is true (checked at each event); fail after ``timeout`` s.

        :raises AssertionError: naming ``description`` and the errors seen.
        """
        with self._cond:
            ok = self._cond.wait_for(what, timeout)
        assert ok, (f"listeners did not see {description} within {timeout} s: errors "
                    f"{self.error_messages()}")


class StreamHarness:
    """A StreamingContext of 1 s batches on a :class:`~ember.testing.ManualClock`, its own
    Context on ``master``, and :attr:`events` listening.

    :param master: the executor (``"inline"``, ``"local[2]"``...).
    :param conf: settings over the harness's defaults (20 ms block interval).
    :param app_name: the Context's application name.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, master: str = "inline", conf: Mapping[str, str] | None = None,
                 app_name: str = "ember-stream-test") -> None:
        c = Conf().set("ember.streaming.blockInterval", "20ms")
        for key, value in (conf or {}).items():
            c.set(key, value)
        self.sc = Context(master, app_name, conf=c)
        self.ssc = StreamingContext(self.sc, 1.0, clock=ManualClock())
        self.events = ReceiverEvents()
        self.ssc.addStreamingListener(self.events)
        self._lock = threading.Lock()
        self.batches: list[list[Any]] = []

    def collect(self, stream: Any) -> None:
        """Keep each batch of ``stream`` (its records, collected) in :attr:`batches`."""

        def keep(rdd: Any) -> None:
            records = rdd.collect()
            with self._lock:
                self.batches.append(records)

        stream.foreachRDD(keep)

    def records(self) -> list[Any]:
        """Every record kept so far, in batch order."""
        with self._lock:
            return [r for batch in self.batches for r in batch]

    def start(self) -> None:
        """Start the streaming context."""
        self.ssc.start()

    def run_until(self, predicate: Callable[[], bool], description: str,
                  timeout: float = WAIT) -> None:
        """Run batches, one per turn, until ``predicate()`` holds (data must cross a network
        first, so this polls), for at most ``timeout`` seconds.

        :raises AssertionError: naming ``description``, the last records and the errors.
        """
        from ember.testing import advance_batches

        deadline = time.monotonic() + timeout
        while True:
            advance_batches(self.ssc, 1, timeout=timeout)
            if predicate():
                return
            if time.monotonic() > deadline:
                records = self.records()
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {description}; got "
                    f"{len(records)} records, e.g. {records[-3:]!r}; receiver errors: "
                    f"{self.events.error_messages()}"
                )
            time.sleep(0.01)

    def run_until_records(self, n: int, timeout: float = WAIT) -> list[Any]:
        """Run batches until at least ``n`` records arrived; return every record."""
        self.run_until(lambda: len(self.records()) >= n, f"{n} records", timeout)
        return self.records()

    def stop(self, graceful: bool = False) -> float:
        """Stop the streaming context and its Context; the seconds it took."""
        start = time.monotonic()
        self.ssc.stop(stopSparkContext=True, stopGraceFully=graceful)
        return time.monotonic() - start
