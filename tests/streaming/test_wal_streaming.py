"""The write-ahead log in the receiver path, on a manual clock: logged before ``storeMany``
returns, recovered batch by batch, cleaned to a bounded size, and lost without it.

A driver crash is taken here as a *copy of the checkpoint directory* made at the moment of
interest (a batch generated and running, more records logged): recovering from the copy is
recovering from what the disk held at that moment. The real SIGKILL tests are in
``test_wal_recovery_kill.py``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ember import Conf, Context
from ember.receivers import Receiver
from ember.streaming import StreamingContext
from ember.testing import (
    ManualClock,
    ReplayableReceiver,
    ReplayableServer,
    TestingFeed,
    TestingSource,
    advance_batches,
)
from ember.wal import ENABLE_KEY, WALError

#: What the module-level output function does (a module-level function pickles by
#: reference into checkpoints, so the test can change what it does between runs).
_SINK: dict[str, Callable[[Any, Any], None]] = {}


def write_out(t: Any, rdd: Any) -> None:
    _SINK["write"](t, rdd)


def batch_ms(t: Any) -> int:
    return round(t.timestamp() * 1000)


def file_sink(out: Path, hold: dict[int, threading.Event] | None = None,
              holding: threading.Event | None = None) -> Callable[[Any, Any], None]:
    """Writes ``out/<batch ms>.json``; waits on ``hold[batch ms]`` first when there is one."""
    out.mkdir(parents=True, exist_ok=True)

    def write(t: Any, rdd: Any) -> None:
        records = sorted(rdd.collect())
        ms = batch_ms(t)
        if hold and ms in hold:
            assert holding is not None
            holding.set()
            assert hold[ms].wait(30)
        (out / f"{ms}.json").write_text(json.dumps(records))

    return write


def outputs(out: Path) -> dict[int, list[Any]]:
    return {int(p.stem): json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}


def conf(wal: bool = True, **extra: str) -> Conf:
    c = Conf().setMaster("inline").setAppName("wal-streaming")
    c.set("ember.streaming.clock", "manual")
    c.set(ENABLE_KEY, "true" if wal else "false")
    for k, v in extra.items():
        c.set(k.replace("_", "."), v)
    return c


@pytest.fixture
def contexts() -> Iterator[list[StreamingContext]]:
    """Every StreamingContext a test makes, stopped (with its Context) at the end."""
    made: list[StreamingContext] = []
    yield made
    for ssc in made:
        ssc.stop(stopSparkContext=True)
    _SINK.clear()


def setup_for(feed: TestingFeed, wal: bool = True, **extra: str) -> Callable[[], StreamingContext]:
    def setup() -> StreamingContext:
        ssc = StreamingContext(Context(conf=conf(wal, **extra)), 1.0)
        TestingSource(feed=feed, method="storeMany", batch_size=5).createStream(ssc) \
            .foreachRDD(write_out)
        return ssc

    return setup


def start(contexts: list[StreamingContext], directory: Path,
          setup: Callable[[], StreamingContext]) -> StreamingContext:
    ssc = StreamingContext.getOrCreate(str(directory), setup)
    contexts.append(ssc)
    ssc.start()
    return ssc


def deliver(feed: TestingFeed, records: list[int]) -> None:
    total = feed.delivered + len(records)
    feed.send(records)
    assert feed.wait_delivered(total, 10)


# ---------------------------------------------------------------------- configuration
def test_enabling_the_log_without_a_checkpoint_directory_is_an_error_at_start(contexts):
    ssc = StreamingContext(Context(conf=conf()), 1.0, clock=ManualClock())
    contexts.append(ssc)
    TestingSource(method="storeMany").createStream(ssc).foreachRDD(lambda rdd: None)
    with pytest.raises(ValueError, match=r"writeAheadLog\.enable.*no checkpoint directory"):
        ssc.start()


def test_storeMany_returns_only_once_its_block_is_logged(tmp_path, contexts):
    seen: list[tuple[int, Any]] = []
    done = threading.Event()

    class Checking(Receiver):
        def onStart(self) -> None:
            threading.Thread(target=self.run, daemon=True).start()

        def run(self) -> None:
            wal = self._supervisor.block_log.wal
            for i in range(5):
                self.storeMany([i] * 3, metadata={"next": i + 1})
                records = list(wal.readAll())
                seen.append((len(records), self.lastStoredMetadata()))
            done.set()

        def onStop(self) -> None:
            pass

    ssc = StreamingContext(Context(conf=conf()), 1.0, clock=ManualClock())
    contexts.append(ssc)
    ssc.checkpoint(str(tmp_path / "cp"))
    ssc.receiverStream(Checking()).foreachRDD(lambda rdd: None)
    ssc.start()
    assert done.wait(10)
    assert seen == [(i + 1, {"next": i + 1}) for i in range(5)]
    assert os.listdir(tmp_path / "cp" / "receivedData") == ["0"]


def test_storeMany_metadata_must_be_json_compatible(tmp_path, contexts):
    errors: list[BaseException] = []
    done = threading.Event()

    class Bad(Receiver):
        def onStart(self) -> None:
            try:
                self.storeMany([1], metadata={1, 2})
            except TypeError as exc:
                errors.append(exc)
            done.set()

        def onStop(self) -> None:
            pass

    ssc = StreamingContext(Context(conf=conf(wal=False)), 1.0, clock=ManualClock())
    contexts.append(ssc)
    ssc.receiverStream(Bad()).foreachRDD(lambda rdd: None)
    ssc.start()
    assert done.wait(10)
    assert errors and "JSON-compatible" in str(errors[0])


# ---------------------------------------------------------------------- recovery
def crash_copy_with_a_batch_running(tmp_path: Path, contexts: list, wal: bool) -> tuple[Path, TestingFeed]:
    """Run until batch 2000 runs (holding 10…19) and 20…24 are stored; copy the checkpoint
    directory then, as a crash would leave it; returns the copy."""
    feed = TestingFeed()
    hold = {2000: threading.Event()}
    holding = threading.Event()
    _SINK["write"] = file_sink(tmp_path / "out1", hold, holding)
    ssc = start(contexts, tmp_path / "cp", setup_for(feed, wal))
    deliver(feed, list(range(10)))
    advance_batches(ssc, 1)  # batch 1000: 0…9
    deliver(feed, list(range(10, 20)))
    ssc.clock.set_time(2.0)  # batch 2000 takes 10…19 and waits in its output
    assert holding.wait(10)
    deliver(feed, list(range(20, 25)))
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path / "cp", crashed)
    hold[2000].set()
    ssc.stop(stopSparkContext=True)
    assert outputs(tmp_path / "out1") == {1000: list(range(10)), 2000: list(range(10, 20))}
    return crashed, feed


def test_a_recovered_batch_gets_exactly_its_blocks_and_later_ones_go_to_the_next(
        tmp_path, contexts, caplog):
    crashed, feed = crash_copy_with_a_batch_running(tmp_path, contexts, wal=True)
    _SINK["write"] = file_sink(tmp_path / "out2")
    with caplog.at_level(logging.INFO, "ember.streaming"):
        ssc = start(contexts, crashed, setup_for(feed))
    assert "recovered" in caplog.text
    ssc._await_batch(2000)  # re-run: pending in the checkpoint
    advance_batches(ssc, 1)
    assert outputs(tmp_path / "out2") == {2000: list(range(10, 20)), 3000: list(range(20, 25))}


def test_without_the_log_the_received_but_unprocessed_data_is_lost(tmp_path, contexts):
    crashed, feed = crash_copy_with_a_batch_running(tmp_path, contexts, wal=False)
    assert not (crashed / "receivedData").exists()
    _SINK["write"] = file_sink(tmp_path / "out2")
    ssc = start(contexts, crashed, setup_for(feed, wal=False))
    ssc._await_batch(2000)
    advance_batches(ssc, 1)
    assert outputs(tmp_path / "out2") == {2000: [], 3000: []}  # 10…24 are gone


def test_a_record_the_checkpoint_needs_and_the_log_lost_stops_recovery(tmp_path, contexts):
    crashed, feed = crash_copy_with_a_batch_running(tmp_path, contexts, wal=True)
    for segment in (crashed / "receivedData" / "0").glob("log-*"):
        segment.unlink()
    _SINK["write"] = file_sink(tmp_path / "out2")
    ssc = StreamingContext.getOrCreate(str(crashed), setup_for(feed))
    contexts.append(ssc)
    with pytest.raises(WALError, match=r"not in the write-ahead log.*batch 2000 ms"):
        ssc.start()


def test_the_last_stored_metadata_survives_a_driver_restart_only_with_the_log(tmp_path, contexts):
    for wal in (True, False):
        with ReplayableServer(total=300) as server:
            def setup(wal: bool = wal, port: int = server.port) -> StreamingContext:
                ssc = StreamingContext(Context(conf=conf(wal)), 1.0)
                ssc.receiverStream(ReplayableReceiver(port, batch_size=50)).foreachRDD(write_out)
                return ssc

            _SINK["write"] = file_sink(tmp_path / f"out-{wal}")
            directory = tmp_path / f"cp-{wal}"
            ssc = start(contexts, directory, setup)
            assert server.wait_acked(300, 10)
            advance_batches(ssc, 1)
            ssc.stop(stopSparkContext=True)
            ssc = start(contexts, directory, setup)
            receiver = ssc._graph.inputs[0].receiver
            assert receiver.lastStoredMetadata() == (300 if wal else None)
            ssc.stop(stopSparkContext=True)


def test_blocks_logged_before_the_first_checkpoint_go_to_the_first_batch(tmp_path, contexts,
                                                                          caplog):
    feed = TestingFeed()
    _SINK["write"] = file_sink(tmp_path / "out")
    ssc = start(contexts, tmp_path / "cp", setup_for(feed))
    deliver(feed, list(range(7)))  # logged and acknowledged; no batch yet, no checkpoint
    ssc.stop(stopSparkContext=True)
    assert not list((tmp_path / "cp").glob("checkpoint-*"))
    with caplog.at_level(logging.WARNING, "ember.streaming"):
        ssc = start(contexts, tmp_path / "cp", setup_for(feed))
    assert "before its first checkpoint" in caplog.text
    advance_batches(ssc, 1)
    assert outputs(tmp_path / "out") == {1000: list(range(7))}


def test_a_context_not_recovered_from_its_checkpoints_discards_their_logged_blocks(
        tmp_path, contexts, caplog):
    feed = TestingFeed()
    _SINK["write"] = file_sink(tmp_path / "out")
    ssc = start(contexts, tmp_path / "cp", setup_for(feed))
    deliver(feed, list(range(5)))
    advance_batches(ssc, 1)
    deliver(feed, list(range(5, 9)))  # logged, never processed
    ssc.stop(stopSparkContext=True)
    (tmp_path / "out" / "1000.json").unlink()
    fresh = setup_for(feed)()  # a new context over the same directory, without getOrCreate
    contexts.append(fresh)
    fresh.checkpoint(str(tmp_path / "cp"))
    with caplog.at_level(logging.WARNING, "ember.streaming"):
        fresh.start()
    assert "deleting 2 block(s)" in caplog.text
    advance_batches(fresh, 1)
    assert outputs(tmp_path / "out") == {1000: []}


# ---------------------------------------------------------------------- bounded disk
def test_the_log_of_a_long_running_stream_stays_bounded(tmp_path, contexts):
    feed = TestingFeed()
    _SINK["write"] = file_sink(tmp_path / "out")
    setup = setup_for(feed, ember_streaming_receiver_writeAheadLog_rollingIntervalSecs="1",
                      ember_streaming_checkpoint_generations="2")
    ssc = start(contexts, tmp_path / "cp", setup)
    logs = tmp_path / "cp" / "receivedData" / "0"
    counts = []
    for i in range(40):
        deliver(feed, [i * 10 + k for k in range(10)])
        advance_batches(ssc, 1)
        counts.append(len(list(logs.glob("log-*"))))
    assert max(counts[10:]) <= 6, counts
    assert sum(len(r) for r in outputs(tmp_path / "out").values()) == 400
    first = sorted(logs.glob("log-*"))[0].name
    assert not first.startswith("log-0000000000"), "the oldest segments were never cleaned"


# ---------------------------------------------------------------------- the replayable source
def test_a_broken_connection_is_resumed_exactly_after_the_last_stored_records(contexts):
    got: list[int] = []
    with ReplayableServer(total=2000, limit=500) as server:
        ssc = StreamingContext(Context(conf=conf(wal=False)), 1.0, clock=ManualClock())
        contexts.append(ssc)
        ssc.receiverStream(ReplayableReceiver(server.port, batch_size=64, restart_delay=0.05)) \
            .foreachRDD(lambda rdd: got.extend(rdd.collect()))
        ssc.start()
        assert server.wait_acked(500, 10)
        server.disconnect()
        server.release(None)
        assert server.wait_acked(2000, 10)
        advance_batches(ssc, 1)
        assert server.connections == 2
    assert sorted(got) == list(range(2000))


def test_the_server_resends_what_was_not_acknowledged():
    import socket

    with ReplayableServer(total=10) as server:
        def read(first: bytes, n: int, ack: int | None = None) -> list[int]:
            with socket.create_connection(server.address, timeout=5) as sock:
                sock.sendall(first)
                data = b""
                while data.count(b"\n") < n:
                    data += sock.recv(1024)
                if ack is not None:
                    sock.sendall(b"ACK %d\n" % ack)
                    assert server.wait_acked(ack, 5)
            return [int(x) for x in data.split()]

        assert read(b"HELLO\n", 10, ack=4) == list(range(10))
        assert read(b"HELLO\n", 6) == list(range(4, 10))  # 4… were never acknowledged
        assert read(b"FROM 8\n", 2) == [8, 9]
        assert server.acked == 8


# ---------------------------------------------------------------------- store and storeBytes
def wait_logged(ssc: StreamingContext, n: int, timeout: float = 10.0) -> None:
    """Bounded poll until ``n`` records are in logged blocks of stream 0 (the block
    generator cuts them on its own timer)."""
    import time

    tracker = ssc._scheduler.tracker
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        blocks = tracker.unallocated(0)
        if sum(b.num_records for b in blocks if b.wal_handle is not None) >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"{n} records were not logged within {timeout} s")


@pytest.mark.parametrize("method", ["store", "storeBytes"])
def test_blocks_cut_by_the_generator_are_logged_and_recovered(tmp_path, contexts, method):
    feed = TestingFeed()

    def setup() -> StreamingContext:
        ssc = StreamingContext(Context(conf=conf(
            ember_streaming_blockInterval="20ms")), 1.0)
        TestingSource(feed=feed, method=method).createStream(ssc).foreachRDD(write_out)
        return ssc

    _SINK["write"] = file_sink(tmp_path / "out")
    ssc = start(contexts, tmp_path / "cp", setup)
    deliver(feed, [str(i) for i in range(30)])
    wait_logged(ssc, 30)
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path / "cp", crashed)
    ssc.stop(stopSparkContext=True)
    ssc = start(contexts, crashed, setup)
    advance_batches(ssc, 1)
    assert outputs(tmp_path / "out") == {1000: sorted(str(i) for i in range(30))}


FAILING_WAL = '''
from ember.wal import FileWriteAheadLog

class FailingWAL(FileWriteAheadLog):
    def write_parts(self, parts, time_ms):
        raise OSError(28, "No space left on device")

    def write_many(self, records, time_ms):  # the receivers' group commits
        raise OSError(28, "No space left on device")
'''


def test_a_block_the_log_cannot_take_is_kept_in_memory_and_reported(tmp_path, contexts,
                                                                      monkeypatch):
    (tmp_path / "failing_wal.py").write_text(FAILING_WAL)
    monkeypatch.syspath_prepend(str(tmp_path))
    feed = TestingFeed()
    ssc = StreamingContext(Context(conf=conf(
        ember_streaming_receiver_writeAheadLog_class="failing_wal:FailingWAL")), 1.0)
    contexts.append(ssc)
    ssc.checkpoint(str(tmp_path / "cp"))
    got: list[Any] = []
    TestingSource(feed=feed, method="store").createStream(ssc) \
        .foreachRDD(lambda rdd: got.extend(rdd.collect()))
    ssc.start()
    deliver(feed, [1, 2, 3])
    ssc.stop(stopSparkContext=False, stopGraceFully=True)
    assert sorted(got) == [1, 2, 3]
    supervisor = ssc._graph.inputs[0].supervisor
    assert supervisor.last_error is not None
    assert "write-ahead log failed" in supervisor.last_error[0]
    assert "No space left" in supervisor.last_error[1]


def test_the_log_stays_bounded_when_metadata_checkpoints_are_off(tmp_path, contexts):
    lock = threading.Lock()  # the output function holds a lock: the graph cannot be saved
    got: list[int] = []
    feed = TestingFeed()
    ssc = StreamingContext(Context(conf=conf(
        ember_streaming_receiver_writeAheadLog_rollingIntervalSecs="1")), 1.0)
    contexts.append(ssc)
    ssc.checkpoint(str(tmp_path / "cp"))

    def collect(rdd: Any) -> None:
        with lock:
            got.extend(rdd.collect())

    TestingSource(feed=feed, method="storeMany").createStream(ssc).foreachRDD(collect)
    ssc.start()
    logs = tmp_path / "cp" / "receivedData" / "0"
    counts = []
    for i in range(30):
        deliver(feed, [i])
        advance_batches(ssc, 1)
        counts.append(len(list(logs.glob("log-*"))))
    assert ssc._scheduler._writer is None  # checkpoints were turned off
    assert sorted(got) == list(range(30))
    assert max(counts[5:]) <= 3, counts
