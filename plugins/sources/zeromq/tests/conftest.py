"""Fixtures of ember-zeromq's tests: real ZeroMQ publishers on 127.0.0.1 (an XPUB socket that
waits for its subscribers) and streams driven by a manual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ember.testing import StreamHarness
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

    @property
    def connections(self) -> int:
        """Subscriptions so far: the contract waits for a new stream's one, since a ``PUB``
        socket would still route to a stopped stream's subscriber until it notices the close."""
        return self.publisher.connections

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


class StreamTest(StreamHarness):
    """The harness of ember.testing, restarting receivers after 50 ms."""

    def __init__(self, master: str = "inline", block_interval: str = "20ms") -> None:
        super().__init__(master, {"ember.streaming.blockInterval": block_interval,
                                  "ember.streaming.receiverRestartDelay": "50ms"},
                         app_name="zeromq-test")

    def run_until_count(self, n: int) -> list[Any]:
        """Run batches until at least ``n`` records arrived; return every record."""
        return self.run_until_records(n, WAIT)


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
