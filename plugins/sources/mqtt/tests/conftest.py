"""Fixtures of ember-mqtt's tests: real Mosquitto brokers on 127.0.0.1 (started by the tests,
stopped after), and streams driven by a manual clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ember.testing import StreamHarness
from ember_mqtt.testing import MosquittoBroker, create_session, publish

#: Seconds any wait of these tests may take at most (all of them end much sooner).
WAIT = 20.0


@pytest.fixture
def brokers(tmp_path) -> Iterator[Callable[..., MosquittoBroker]]:
    """A function starting :class:`MosquittoBroker` instances, all closed after the test."""
    made: list[MosquittoBroker] = []

    def make(**options: Any) -> MosquittoBroker:
        options.setdefault("directory", tmp_path / f"broker-{len(made)}")
        broker = MosquittoBroker(**options)
        made.append(broker)
        return broker.start()

    yield make
    for broker in made:
        broker.close()


@pytest.fixture
def broker(brokers) -> MosquittoBroker:
    """A running broker (persistence on), closed after the test."""
    return brokers()


class MQTTFeed:
    """The contract's feed: publishes records at QoS 1 on one topic of a broker; ``fail()``
    restarts the broker. The receiver's persistent session is made first, so what is sent
    while no receiver is connected waits at the broker.

    :param broker: the running broker.
    """

    __test__ = False

    def __init__(self, broker: MosquittoBroker) -> None:
        self.broker = broker
        self.topic = "contract/records"
        self.client_id = f"contract-{uuid.uuid4().hex[:8]}"
        create_session(broker.url, self.client_id, self.topic)

    def send(self, records: list[Any]) -> None:
        publish(self.broker.url, self.topic, [str(r) for r in records], qos=1, timeout=WAIT)

    def fail(self) -> None:
        self.broker.restart()


class StreamTest(StreamHarness):
    """The harness of ember.testing, restarting receivers after 100 ms; ``conf`` keys are
    written with ``_`` for ``.`` (``ember_streaming_receiver_maxRate="10"``)."""

    def __init__(self, master: str = "inline", **conf: str) -> None:
        settings = {"ember.streaming.receiverRestartDelay": "100ms"}
        settings.update({key.replace("_", "."): value for key, value in conf.items()})
        super().__init__(master, settings, app_name="mqtt-test")

    def run_until_records(self, want: set[Any], timeout: float = WAIT) -> list[Any]:  # type: ignore[override]
        """Run batches until every record of ``want`` arrived; return every record."""
        self.run_until(lambda: want <= set(self.records()), f"{len(want)} records", timeout)
        return self.records()


@pytest.fixture
def stream_test() -> Iterator[Callable[..., StreamTest]]:
    """A function making :class:`StreamTest` instances, stopped after the test."""
    made: list[StreamTest] = []

    def make(master: str = "inline", **conf: str) -> StreamTest:
        test = StreamTest(master, **conf)
        made.append(test)
        return test

    yield make
    for test in made:
        test.ssc.stop(stopSparkContext=True)


@pytest.fixture
def mqtt_feed(broker) -> MQTTFeed:
    """An :class:`MQTTFeed` on a running broker."""
    return MQTTFeed(broker)
