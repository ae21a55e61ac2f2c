"""Fixtures of ember-twitter's tests: a local server speaking the X API v2 streaming protocol
(no network), and streams driven by a manual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ember.testing import StreamHarness
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


class StreamTest(StreamHarness):
    """The harness of ember.testing, with the posts' texts at hand."""

    def __init__(self, master: str = "inline") -> None:
        super().__init__(master, app_name="twitter-test")

    def texts(self) -> list[str]:
        """The text of every post kept so far."""
        return [r["text"] for r in self.records()]


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
