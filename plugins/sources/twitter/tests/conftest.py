"""Fixtures of ember-twitter's tests: a local server speaking the X API v2 streaming protocol
(no network), and streams driven by a manual clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ember import Conf, Context
from ember.streaming import StreamingContext, StreamingListener
from ember.testing import ManualClock, advance_batches
from ember_twitter.testing import XStreamServer

WAIT = 20.0
TOKEN = "test-token"


@pytest.fixture
def x_server() -> Iterator[XStreamServer]:
    """A running :class:`XStreamServer` (keep-alive every 0.05 s), closed after the test."""
    server = XStreamServer(token=TOKEN, keepalive=0.05)
    try:
        yield server
    finally:
        server.close()


class XFeed:
    """The contract's feed: records (post dicts) go out on the sampled stream; ``fail()``
    ends the stream connected now."""

    __test__ = False

    def __init__(self, server: XStreamServer) -> None:
        self.server = server

    def send(self, records: list[Any]) -> None:
        self.server.send(records)

    def fail(self) -> None:
        self.server.fail()


@pytest.fixture
def x_feed(x_server) -> XFeed:
    return XFeed(x_server)


class Events(StreamingListener):
    """What listeners saw: receiver errors and starts."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.errors: list[Any] = []
        self.started: list[Any] = []

    def onReceiverStarted(self, receiverStarted: Any) -> None:
        with self._cond:
            self.started.append((time.monotonic(), receiverStarted.receiverInfo()))
            self._cond.notify_all()

    def onReceiverError(self, receiverError: Any) -> None:
        with self._cond:
            self.errors.append((time.monotonic(), receiverError.receiverInfo()))
            self._cond.notify_all()

    def error_messages(self) -> list[str]:
        with self._cond:
            return [info.lastErrorMessage() for _, info in self.errors]

    def wait(self, what: Callable[[], bool], description: str, timeout: float = WAIT) -> None:
        with self._cond:
            ok = self._cond.wait_for(what, timeout)
        assert ok, (f"listeners did not see {description} within {timeout} s: errors "
                    f"{self.error_messages()}")


class StreamTest:
    """A StreamingContext on a manual clock (1 s batches) whose output batches are kept."""

    __test__ = False

    def __init__(self, master: str = "inline") -> None:
        conf = Conf().set("ember.streaming.blockInterval", "20ms")
        self.sc = Context(master, "twitter-test", conf=conf)
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

    def texts(self) -> list[str]:
        return [r["text"] for r in self.records()]

    def run_until(self, predicate: Callable[[], bool], description: str,
                  timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            advance_batches(self.ssc, 1, timeout=timeout)
            if predicate():
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {description}; got "
                    f"{self.texts()[-5:]!r}; errors {self.events.error_messages()}")
            time.sleep(0.01)


@pytest.fixture
def stream_test() -> Iterator[Callable[..., StreamTest]]:
    made: list[StreamTest] = []

    def make(master: str = "inline") -> StreamTest:
        test = StreamTest(master)
        made.append(test)
        return test

    yield make
    for test in made:
        test.ssc.stop(stopSparkContext=True)
