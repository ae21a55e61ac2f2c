"""Fixtures of ember-mqtt's tests: real Mosquitto brokers on 127.0.0.1 (started by the tests,
stopped after), and streams driven by a manual clock."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ember import Conf, Context
from ember.streaming import StreamingContext, StreamingListener
from ember.testing import ManualClock, advance_batches
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


class Events(StreamingListener):
    """What listeners saw: receiver errors, starts and stops."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.errors: list[Any] = []
        self.started: list[Any] = []
        self.stopped: list[Any] = []

    def _add(self, kind: list[Any], item: Any) -> None:
        with self._cond:
            kind.append(item)
            self._cond.notify_all()

    def onReceiverStarted(self, receiverStarted: Any) -> None:
        self._add(self.started, receiverStarted.receiverInfo())

    def onReceiverError(self, receiverError: Any) -> None:
        self._add(self.errors, receiverError.receiverInfo())

    def onReceiverStopped(self, receiverStopped: Any) -> None:
        self._add(self.stopped, receiverStopped.receiverInfo())

    def error_messages(self) -> list[str]:
        with self._cond:
            return [info.lastErrorMessage() for info in self.errors]

    def wait(self, what: Callable[[], bool], description: str, timeout: float = WAIT) -> None:
        with self._cond:
            ok = self._cond.wait_for(what, timeout)
        assert ok, (f"listeners did not see {description} within {timeout} s: errors "
                    f"{self.error_messages()}")


class StreamTest:
    """A StreamingContext on a manual clock (1 s batches) whose output batches are kept.

    :param master: the executor.
    :param conf: more configuration.
    """

    __test__ = False

    def __init__(self, master: str = "inline", **conf: str) -> None:
        c = Conf().set("ember.streaming.blockInterval", "20ms")
        c.set("ember.streaming.receiverRestartDelay", "100ms")
        for key, value in conf.items():
            c.set(key.replace("_", "."), value)
        self.sc = Context(master, "mqtt-test", conf=c)
        self.ssc = StreamingContext(self.sc, 1.0, clock=ManualClock())
        self.events = Events()
        self.ssc.addStreamingListener(self.events)
        self._lock = threading.Lock()
        self.batches: list[list[Any]] = []

    def collect(self, stream: Any) -> None:
        """Keep each batch of ``stream``."""

        def keep(rdd: Any) -> None:
            records = rdd.collect()
            with self._lock:
                self.batches.append(records)

        stream.foreachRDD(keep)

    def records(self) -> list[Any]:
        with self._lock:
            return [r for batch in self.batches for r in batch]

    def start(self) -> None:
        self.ssc.start()

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
                    f"{len(self.records())} records, e.g. {self.records()[-3:]!r}; receiver "
                    f"errors: {self.events.error_messages()}"
                )
            time.sleep(0.02)

    def run_until_records(self, want: set[Any], timeout: float = WAIT) -> list[Any]:
        """Run batches until every record of ``want`` arrived; return every record."""
        self.run_until(lambda: want <= set(self.records()), f"{len(want)} records", timeout)
        return self.records()

    def stop(self, graceful: bool = False) -> None:
        self.ssc.stop(stopSparkContext=True, stopGraceFully=graceful)


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
