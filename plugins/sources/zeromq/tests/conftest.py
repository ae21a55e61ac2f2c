"""Fixtures of ember-zeromq's tests: real ZeroMQ publishers on 127.0.0.1 (an XPUB socket that
waits for its subscribers) and streams driven by a manual clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ember import Conf, Context
from ember.streaming import StreamingContext, StreamingListener
from ember.testing import ManualClock, advance_batches
from ember_zeromq.testing import Publisher

#: Seconds any wait of these tests may take at most (all of them end much sooner).
WAIT = 20.0
#: The topic frame of the contract feed's messages.
TOPIC = b"records"


class ZeroMQFeed:
    """The contract's feed: each record goes out as a two-frame message ``[topic, record]``;
    ``fail()`` restarts the publisher's socket (the subscriber's connection is lost).

    :param publisher: the running :class:`Publisher`.
    """

    __test__ = False

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    @property
    def url(self) -> str:
        return self.publisher.endpoint

    def send(self, records: list[Any]) -> None:
        self.publisher.send([[TOPIC, str(r).encode("utf-8")] for r in records])

    def fail(self) -> None:
        self.publisher.restart()


@pytest.fixture
def publishers() -> Iterator[Callable[..., Publisher]]:
    """A function making :class:`Publisher` instances, all closed after the test."""
    made: list[Publisher] = []

    def make(endpoint: str | None = None) -> Publisher:
        publisher = Publisher(endpoint)
        made.append(publisher)
        return publisher

    yield make
    for publisher in made:
        publisher.close()


@pytest.fixture
def zeromq_feed(publishers) -> ZeroMQFeed:
    """A :class:`ZeroMQFeed` on a new publisher."""
    return ZeroMQFeed(publishers())


class Events(StreamingListener):
    """What listeners saw: receiver errors and starts."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.errors: list[Any] = []
        self.started: list[Any] = []

    def onReceiverStarted(self, receiverStarted: Any) -> None:
        with self._cond:
            self.started.append(receiverStarted.receiverInfo())
            self._cond.notify_all()

    def onReceiverError(self, receiverError: Any) -> None:
        with self._cond:
            self.errors.append(receiverError.receiverInfo())
            self._cond.notify_all()

    def error_messages(self) -> list[str]:
        with self._cond:
            return [info.lastErrorMessage() for info in self.errors]

    def wait(self, what: Callable[[], bool], description: str, timeout: float = WAIT) -> None:
        with self._cond:
            ok = self._cond.wait_for(what, timeout)
        assert ok, (f"listeners did not see {description} within {timeout} s: errors "
                    f"{self.error_messages()}")


class StreamTest:
    """A StreamingContext on a manual clock (1 s batches) whose output batches are kept."""

    __test__ = False

    def __init__(self, master: str = "inline", block_interval: str = "20ms") -> None:
        conf = Conf().set("ember.streaming.blockInterval", block_interval)
        conf.set("ember.streaming.receiverRestartDelay", "50ms")
        self.sc = Context(master, "zeromq-test", conf=conf)
        self.ssc = StreamingContext(self.sc, 1.0, clock=ManualClock())
        self.events = Events()
        self.ssc.addStreamingListener(self.events)
        self._lock = threading.Lock()
        self.batches: list[list[Any]] = []

    def collect(self, stream: Any) -> None:
        def keep(rdd: Any) -> None:
            records = rdd.collect()
            with self._lock:
                self.batches.append(records)

        stream.foreachRDD(keep)

    def records(self) -> list[Any]:
        with self._lock:
            return [r for batch in self.batches for r in batch]

    def run_until(self, predicate: Callable[[], bool], description: str,
                  timeout: float = WAIT) -> None:
        """Run batches until ``predicate()`` holds (a batch per turn, at most ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while True:
            advance_batches(self.ssc, 1, timeout=timeout)
            if predicate():
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {description}; got "
                    f"{len(self.records())} records, e.g. {self.records()[-3:]!r}; errors "
                    f"{self.events.error_messages()}")
            time.sleep(0.01)

    def run_until_count(self, n: int) -> list[Any]:
        self.run_until(lambda: len(self.records()) >= n, f"{n} records")
        return self.records()


@pytest.fixture
def stream_test() -> Iterator[Callable[..., StreamTest]]:
    """A function making :class:`StreamTest` instances, stopped after the test."""
    made: list[StreamTest] = []

    def make(master: str = "inline", block_interval: str = "20ms") -> StreamTest:
        test = StreamTest(master, block_interval)
        made.append(test)
        return test

    yield make
    for test in made:
        test.ssc.stop(stopSparkContext=True)
