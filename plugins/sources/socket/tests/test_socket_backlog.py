"""A socket source faster than the processing: text is cut into size-capped blocks, the
backlog waits on disk (or, memory-only, in TCP's flow control), and every line arrives
exactly once — counted exactly, also through a graceful stop."""

from __future__ import annotations

import collections
import operator
import threading
import time
from typing import Any

import pytest
from ember import Conf, Context
from ember.storagelevel import StorageLevel
from ember.streaming import StreamingContext
from ember.testing import ManualClock, advance_batches

from .conftest import WAIT

KiB = 1024


def corpus(n: int) -> list[str]:
    words = [f"w{i}é" for i in range(500)]
    return [" ".join(words[(i * 7 + j * 13) % 500] for j in range(8)) for i in range(n)]


class WordCount:
    """The quick example's pipeline on a manual clock; batch counts are merged as they come,
    with each batch's partition count and the tracker's memory seen at each batch."""

    def __init__(self, master: str, port: int, conf: dict[str, Any], **options: Any) -> None:
        self.sc = Context(master, "socket-backlog", conf=Conf().setAll(conf.items()))
        self.ssc = StreamingContext(self.sc, 1.0, clock=ManualClock())
        self.counts: collections.Counter = collections.Counter()
        self.lines = 0
        self.partitions: list[int] = []
        lines = self.ssc.socketTextStream("127.0.0.1", port, **options)
        lines.foreachRDD(self._count_partitions)
        (lines.flatMap(lambda line: line.split(" "))
              .map(lambda w: (w, 1))
              .reduceByKey(operator.add)
              .foreachRDD(lambda rdd: self.counts.update(dict(rdd.collect()))))
        lines.count().foreachRDD(self._count_lines)

    def _count_partitions(self, rdd: Any) -> None:
        self.partitions.append(rdd.getNumPartitions())

    def _count_lines(self, rdd: Any) -> None:
        self.lines += sum(rdd.collect())

    @property
    def tracker(self) -> Any:
        return self.ssc._scheduler.tracker

    @property
    def received(self) -> int:
        return self.ssc._scheduler.graph.inputs[0].supervisor.records_received

    def close(self) -> None:
        self.ssc.stop(stopSparkContext=True)


def expected_counts(lines: list[str]) -> collections.Counter:
    return collections.Counter(w for line in lines for w in line.split(" "))


def send_in_background(server: Any, data: bytes) -> threading.Thread:
    def run() -> None:
        for i in range(0, len(data), 256 * KiB):
            server.send_bytes(data[i:i + 256 * KiB])

    thread = threading.Thread(target=run, daemon=True, name="test-feeder")
    thread.start()
    return thread


@pytest.fixture
def wordcounts():
    made: list[WordCount] = []

    def make(*args: Any, **kwargs: Any) -> WordCount:
        made.append(WordCount(*args, **kwargs))
        return made[-1]

    yield make
    for wc in made:
        wc.close()


def test_a_fast_sender_is_spilled_in_size_capped_blocks_and_counted_exactly(
    ember_master, servers, wordcounts
):
    lines = corpus(60_000)  # about 2.6 MB
    server = servers()
    wc = wordcounts(ember_master, server.port, {
        "ember.streaming.blockInterval": "1h",  # only the size cap cuts (and the stop)
        "ember.streaming.blockMaxBytes": "128k",
        "ember.streaming.receiver.spillThreshold": "256k",
    }, readChunkSize=64 * KiB)
    wc.ssc.start()
    feeder = send_in_background(server, "".join(f"{ln}\n" for ln in lines).encode())
    deadline = time.monotonic() + WAIT
    while wc.received < len(lines) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert wc.received == len(lines), "the receiver reads all of it without any batch"
    assert wc.tracker.bytes_in_memory <= 256 * KiB, "the backlog beyond the threshold is on disk"
    assert wc.tracker.bytes_spilled_total > 1024 * KiB
    advance_batches(wc.ssc, 1)
    assert max(wc.partitions) >= 12, "one batch, many partitions for the workers to share"
    wc.ssc.stop(stopSparkContext=False, stopGraceFully=True)  # the last, partial block
    feeder.join(WAIT)
    assert wc.lines == len(lines)
    assert wc.counts == expected_counts(lines)


def test_a_memory_only_receiver_holds_the_sender_back_and_loses_nothing(
    ember_master, servers, wordcounts
):
    lines = corpus(60_000)
    server = servers()
    cap = 512 * KiB
    wc = wordcounts(ember_master, server.port, {
        "ember.streaming.blockInterval": "50ms",
        "ember.streaming.blockMaxBytes": "64k",
        "ember.streaming.receiver.maxMemory": cap,
    }, readChunkSize=16 * KiB, storageLevel=StorageLevel.MEMORY_ONLY)
    wc.ssc.start()
    send_in_background(server, "".join(f"{ln}\n" for ln in lines).encode())
    deadline = time.monotonic() + WAIT
    while wc.tracker.bytes_in_memory < cap - 96 * KiB and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # a bounded look: no batch ran, so the receiver must stay held back
    assert wc.received < len(lines)
    assert wc.tracker.bytes_in_memory <= cap and wc.tracker.bytes_spilled_total == 0
    deadline = time.monotonic() + WAIT
    while wc.lines < len(lines) and time.monotonic() < deadline:
        advance_batches(wc.ssc, 1)
        assert wc.tracker.bytes_in_memory <= cap
    assert wc.lines == len(lines)
    assert wc.counts == expected_counts(lines)
