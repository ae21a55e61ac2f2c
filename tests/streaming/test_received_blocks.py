"""Received blocks under load: the size cap of a block, the driver's memory budget (spilling to
disk, or waiting for room with a memory-only storage level), lazy decoding in the workers, and
that none of it loses or reorders a record — also through a graceful stop.

Batches follow a ManualClock the tests move; receivers run real threads, met on Events or by
polling a condition for a bounded time.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ember import Conf, Context
from ember._engine import inputs
from ember._engine.inputs import BlockSplit, decode_block
from ember.receivers import Receiver
from ember.storagelevel import StorageLevel
from ember.streaming import StreamingContext
from ember.streaming._blocks import CODEC_LINES, Block, ReceivedBlockTracker
from ember.streaming._receiving import parse_bytes
from ember.testing import ManualClock, advance_batches, wait_until

WAIT = 30.0


def text_lines(n: int, start: int = 0) -> list[str]:
    """``n`` distinct lines of about 60 bytes, some with multi-byte characters."""
    return [f"line {i:08d} {'é' if i % 7 == 0 else 'e'} " + "x" * (i % 50)
            for i in range(start, start + n)]


def chunks_of(lines: list[str], per_chunk: int) -> list[bytes]:
    return ["".join(f"{ln}\n" for ln in lines[i:i + per_chunk]).encode()
            for i in range(0, len(lines), per_chunk)]


class BytesReceiver(Receiver):
    """Stores each chunk with ``storeBytes`` from its own thread, then idles; ``stored`` is
    set once every chunk was stored (``progress`` counts the chunks stored so far)."""

    def __init__(self, chunks: list[bytes],
                 level: StorageLevel = StorageLevel.MEMORY_AND_DISK_SER_2) -> None:
        super().__init__(level)
        self.chunks = chunks
        self.progress = 0
        self.stored = threading.Event()
        self.halt = threading.Event()
        self.thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    def onStart(self) -> None:
        self.halt.clear()
        self.thread = threading.Thread(target=self._run, daemon=True, name="test-bytes")
        self.thread.start()

    def _run(self) -> None:
        try:
            for chunk in self.chunks:
                if self.isStopped():
                    break
                self.storeBytes(chunk)
                self.progress += 1
            else:
                self.stored.set()
        except RuntimeError:
            if not self.isStopped():  # else: stopped while storing, as documented
                raise
        except BaseException as exc:
            self.errors.append(exc)
        self.halt.wait()

    def onStop(self) -> None:
        self.halt.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join()


class Harness:
    """A Context (own conf), a StreamingContext on a ManualClock, one receiver stream whose
    batches' partitions are kept (in order of batch time)."""

    def __init__(self, receiver: Receiver, master: str, conf: dict[str, Any]) -> None:
        self.ctx = Context(master, "test-received-blocks", conf=Conf().setAll(conf.items()))
        self.clock = ManualClock(1000.0)
        self.ssc = StreamingContext(self.ctx, 1.0, clock=self.clock)
        self.receiver = receiver
        self.stream = self.ssc.receiverStream(receiver)
        self.lock = threading.Lock()
        self.batches: dict[int, list[list[Any]]] = {}

        def keep(t: Any, rdd: Any) -> None:
            parts = rdd.glom().collect()
            with self.lock:
                self.batches[round(t.timestamp() * 1000)] = parts

        self.stream.foreachRDD(keep)

    @property
    def tracker(self) -> ReceivedBlockTracker:
        return self.ssc._scheduler.tracker

    def partitions(self) -> list[list[Any]]:
        with self.lock:
            return [p for t in sorted(self.batches) for p in self.batches[t]]

    def records(self) -> list[Any]:
        return [r for p in self.partitions() for r in p]

    def unallocated(self) -> list[Block]:
        return self.tracker.unallocated(self.stream.id)

    def close(self) -> None:
        try:
            self.ssc.stop(stopSparkContext=False)
        finally:
            self.ctx.stop()
        errors = getattr(self.receiver, "errors", [])
        if errors:
            raise errors[0]


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(receiver: Receiver, master: str = "inline",
             conf: dict[str, Any] | None = None) -> Harness:
        made.append(Harness(receiver, master, dict(conf or {})))
        return made[-1]

    yield make
    for h in made:
        h.close()


# ---------------------------------------------------------------------- the size cap


def test_text_is_cut_into_blocks_of_blockMaxBytes_so_one_batch_has_many_partitions(
    harness, ember_master
):
    lines = text_lines(20_000)
    receiver = BytesReceiver(chunks_of(lines, 500))  # chunks of about 32 KB
    h = harness(receiver, ember_master, {"ember.streaming.blockInterval": "1h",
                                         "ember.streaming.blockMaxBytes": "128k",
                                         "ember.streaming.receiver.spillThreshold": 0})
    h.ssc.start()
    assert receiver.stored.wait(WAIT)
    blocks = h.unallocated()
    total = sum(len(c) for c in receiver.chunks)
    assert len(blocks) >= total // (128 << 10) - 1, "the size cap cut blocks, not the timer"
    assert all(b.nbytes <= (128 << 10) + max(len(c) for c in receiver.chunks) for b in blocks)
    advance_batches(h.ssc, 1)
    parts = h.partitions()
    assert len(parts) == len(blocks), "each block is one partition of the batch"
    in_blocks = sum(b.num_records for b in blocks)
    assert h.records() == lines[:in_blocks]
    h.ssc.stop(stopSparkContext=False, stopGraceFully=True)  # the rest is still buffered
    assert h.records() == lines, "every line once, in order"


def test_one_storeBytes_larger_than_the_cap_is_cut_at_line_breaks(harness):
    lines = text_lines(10_000)
    data = "".join(f"{ln}\n" for ln in lines).encode()
    receiver = BytesReceiver([data])
    h = harness(receiver, conf={"ember.streaming.blockInterval": "1h",
                                "ember.streaming.blockMaxBytes": "64k"})
    h.ssc.start()
    assert receiver.stored.wait(WAIT)
    blocks = h.unallocated()
    assert len(blocks) >= len(data) // (64 << 10)
    assert all(b.nbytes <= (64 << 10) + 200 for b in blocks)
    assert sum(b.num_records for b in blocks) == len(lines)
    advance_batches(h.ssc, 1)
    assert h.records() == lines


# ---------------------------------------------------------------------- spilling


def test_blocks_over_the_spill_threshold_go_to_files_the_workers_read_then_are_removed(
    harness, ember_master
):
    lines = text_lines(30_000)
    receiver = BytesReceiver(chunks_of(lines, 1000))
    h = harness(receiver, ember_master, {"ember.streaming.blockInterval": "100ms",
                                         "ember.streaming.blockMaxBytes": "256k",
                                         "ember.streaming.receiver.spillThreshold": "512k"})
    h.ssc.start()
    wait_until(lambda: sum(b.num_records for b in h.unallocated()) == len(lines),
               "every line in a block")
    blocks = h.unallocated()
    spilled = [b for b in blocks if b.path is not None]
    in_memory = [b for b in blocks if b.path is None]
    assert spilled and in_memory, "the first blocks stay in memory, the rest are spilled"
    assert h.tracker.bytes_in_memory <= 512 << 10
    assert all(b.payload == b"" and os.path.getsize(b.path) == b.nbytes for b in spilled)
    assert not any(n.endswith(".tmp") for n in os.listdir(os.path.dirname(spilled[0].path)))
    advance_batches(h.ssc, 1)
    assert h.records() == lines, "spilled blocks are read back exactly, in order"
    # the stream remembers a batch for one batch interval: two batches later it is forgotten
    advance_batches(h.ssc, 2)
    wait_until(lambda: not any(os.path.exists(b.path) for b in spilled),
               "the spill files of the forgotten batch to be removed")
    assert h.tracker.bytes_in_memory == 0


def test_a_disk_only_receiver_spills_every_block(harness):
    lines = text_lines(3_000)
    receiver = BytesReceiver(chunks_of(lines, 500), StorageLevel.DISK_ONLY)
    h = harness(receiver, conf={"ember.streaming.blockInterval": "50ms"})
    h.ssc.start()
    wait_until(lambda: sum(b.num_records for b in h.unallocated()) == len(lines),
               "every line in a block")
    assert all(b.path is not None for b in h.unallocated())
    assert h.tracker.bytes_in_memory == 0
    advance_batches(h.ssc, 1)
    assert h.records() == lines


def test_spilled_blocks_travel_as_bytes_to_workers_that_do_not_share_the_drivers_files(
    tmp_path
):
    path = tmp_path / "input-0-1"
    path.write_bytes(b"a\nb\n")
    split = BlockSplit(3, b"", CODEC_LINES, None, "replace", str(path), ship=True)
    copy = pickle.loads(pickle.dumps(split))
    assert (copy.payload, copy.path) == (b"a\nb\n", None)
    assert list(decode_block(copy)) == ["a", "b"]
    local = pickle.loads(pickle.dumps(BlockSplit(3, b"", CODEC_LINES, None, "replace",
                                                 str(path))))
    assert (local.payload, local.path) == (b"", str(path)), "a shared file is read in place"
    assert list(decode_block(local)) == ["a", "b"]


def test_reading_a_spilled_block_whose_batch_was_forgotten_says_so(tmp_path):
    split = BlockSplit(0, b"", CODEC_LINES, None, "replace", str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match="its batch was forgotten"):
        list(decode_block(split))


def test_a_spill_that_fails_keeps_the_block_in_memory(harness, caplog):
    lines = text_lines(5_000)
    receiver = BytesReceiver(chunks_of(lines, 500))
    h = harness(receiver, conf={"ember.streaming.blockInterval": "100ms",
                                "ember.streaming.blockMaxBytes": "32k",
                                "ember.streaming.receiver.spillThreshold": "32k"})
    # a file where the spill directory goes: every spill fails
    with open(os.path.join(h.ctx._local_dir, "received-blocks"), "w"):
        pass
    h.ssc.start()
    wait_until(lambda: sum(b.num_records for b in h.unallocated()) == len(lines),
               "every line in a block")
    assert all(b.path is None for b in h.unallocated())
    assert "it is kept in memory" in caplog.text
    advance_batches(h.ssc, 1)
    assert h.records() == lines


# ---------------------------------------------------------------------- memory-only levels


def test_a_memory_only_receiver_waits_for_room_and_loses_nothing(harness, ember_master):
    lines = text_lines(20_000)
    receiver = BytesReceiver(chunks_of(lines, 250), StorageLevel.MEMORY_ONLY)  # ~16 KB chunks
    cap = 256 << 10
    h = harness(receiver, ember_master, {"ember.streaming.blockInterval": "100ms",
                                         "ember.streaming.blockMaxBytes": "64k",
                                         "ember.streaming.receiver.maxMemory": cap})
    h.ssc.start()
    wait_until(lambda: h.tracker.bytes_in_memory >= cap - (96 << 10), "the memory to fill")
    time.sleep(0.2)  # a bounded look: the receiver must stay blocked, not run on
    assert not receiver.stored.is_set(), "the store waits while memory is full"
    assert h.tracker.bytes_in_memory <= cap
    assert not any(b.path for b in h.unallocated()), "a memory-only block is never spilled"
    deadline = time.monotonic() + WAIT
    while len(h.records()) < len(lines) and time.monotonic() < deadline:
        advance_batches(h.ssc, 1)  # batches take the blocks; forgetting them frees room
        assert h.tracker.bytes_in_memory <= cap
    assert receiver.stored.is_set()
    assert h.records() == lines, "every line once, in order"


class RecordsReceiver(Receiver):
    """Stores ``n`` numbers one by one with ``store`` from its own thread (memory-only)."""

    def __init__(self, n: int) -> None:
        super().__init__(StorageLevel.MEMORY_ONLY)
        self.n = n
        self.stored = threading.Event()
        self.halt = threading.Event()
        self.thread: threading.Thread | None = None

    def onStart(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True, name="test-records")
        self.thread.start()

    def _run(self) -> None:
        for i in range(self.n):
            if self.isStopped():
                return
            self.store(i)
        self.stored.set()
        self.halt.wait()

    def onStop(self) -> None:
        self.halt.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join()


def test_single_records_of_a_held_back_receiver_do_not_pile_up_in_the_generator(harness):
    from ember.streaming._blocks import RECORDS_BACKLOG

    receiver = RecordsReceiver(200_000)
    h = harness(receiver, conf={"ember.streaming.blockInterval": "10ms",
                                "ember.streaming.receiver.maxMemory": "16k"})
    h.ssc.start()
    generator = h.stream.supervisor.generator
    wait_until(lambda: h.tracker.bytes_in_memory > 0, "a first block")
    time.sleep(0.2)  # a bounded look while no batch frees memory
    assert not receiver.stored.is_set(), "store is held back"
    assert len(generator._records) <= 2 * RECORDS_BACKLOG
    deadline = time.monotonic() + WAIT
    while len(h.records()) < receiver.n and time.monotonic() < deadline:
        advance_batches(h.ssc, 1)
    assert h.records() == list(range(receiver.n))


def test_graceful_stop_drains_spilled_blocks_and_a_store_waiting_for_room(harness, ember_master):
    spilling = text_lines(20_000)
    waiting = text_lines(20_000, start=50_000)
    r1 = BytesReceiver(chunks_of(spilling, 500))
    r2 = BytesReceiver(chunks_of(waiting, 250), StorageLevel.MEMORY_ONLY)
    h = harness(r1, ember_master, {"ember.streaming.blockInterval": "1h",
                                   "ember.streaming.blockMaxBytes": "64k",
                                   "ember.streaming.receiver.spillThreshold": "64k",
                                   "ember.streaming.receiver.maxMemory": "256k"})
    s2 = h.ssc.receiverStream(r2)
    got2: list[Any] = []
    s2.foreachRDD(lambda rdd: got2.extend(rdd.collect()))
    h.ssc.start()
    assert r1.stored.wait(WAIT)
    wait_until(lambda: r2.progress > 0 and h.tracker.bytes_in_memory > (128 << 10),
               "the memory-only receiver to fill memory")
    assert not r2.stored.is_set()
    h.ssc.stop(stopSparkContext=False, stopGraceFully=True)
    assert h.records() == spilling, "every spilled line is processed by the graceful stop"
    assert got2 == waiting[:len(got2)] and len(got2) >= 250 * r2.progress, (
        "every line the memory-only receiver stored is processed, in order"
    )


# ---------------------------------------------------------------------- with the write-ahead log


@pytest.mark.parametrize("level", [StorageLevel.MEMORY_AND_DISK_SER_2, StorageLevel.MEMORY_ONLY])
def test_logged_blocks_are_spilled_or_wait_like_the_others(harness, tmp_path, level):
    lines = text_lines(20_000)
    receiver = BytesReceiver(chunks_of(lines, 250), level)
    h = harness(receiver, conf={"ember.streaming.receiver.writeAheadLog.enable": "true",
                                "ember.streaming.blockInterval": "50ms",
                                "ember.streaming.blockMaxBytes": "64k",
                                "ember.streaming.receiver.spillThreshold": "128k",
                                "ember.streaming.receiver.maxMemory": "256k"})
    h.ssc.checkpoint(str(tmp_path / "checkpoints"))
    h.ssc.start()
    if level.useDisk:
        wait_until(lambda: sum(b.num_records for b in h.unallocated()) == len(lines),
                   "every line logged and in a block")
        assert any(b.path is not None for b in h.unallocated())
        assert all(b.wal_handle is not None for b in h.unallocated())
    else:
        wait_until(lambda: h.tracker.bytes_in_memory > (128 << 10), "the memory to fill")
        assert not receiver.stored.is_set() and h.tracker.bytes_in_memory <= 256 << 10
    h.ssc.stop(stopSparkContext=False, stopGraceFully=True)
    got = h.records()
    assert got == lines[:len(got)] and len(got) >= 250 * receiver.progress, (
        "every line stored is processed by the graceful stop, in order"
    )
    if level.useDisk:
        assert got == lines


def test_logged_blocks_over_the_threshold_are_read_from_the_log_not_written_twice(
    harness, tmp_path, ember_master
):
    lines = text_lines(20_000)
    receiver = BytesReceiver(chunks_of(lines, 250))
    h = harness(receiver, ember_master, {
        "ember.streaming.receiver.writeAheadLog.enable": "true",
        "ember.streaming.blockInterval": "50ms",
        "ember.streaming.blockMaxBytes": "64k",
        "ember.streaming.receiver.spillThreshold": "128k",
    })
    h.ssc.checkpoint(str(tmp_path / "checkpoints"))
    h.ssc.start()
    wait_until(lambda: sum(b.num_records for b in h.unallocated()) == len(lines),
               "every line logged and in a block")
    from_log = [b for b in h.unallocated() if b.path is not None]
    assert from_log, "blocks over the threshold point into the log"
    assert all(not b.owns_file and b.payload == b"" and b.wal_handle is not None
               and os.path.basename(b.path).startswith("log-") for b in from_log)
    assert h.tracker.bytes_spilled_total == 0, "nothing was written a second time"
    assert h.tracker.bytes_in_memory <= 128 << 10
    advance_batches(h.ssc, 1)
    assert h.records() == lines, "blocks read from the log come back exactly, in order"
    advance_batches(h.ssc, 2)  # the batch is forgotten: the log's segments stay the log's
    assert all(os.path.exists(b.path) for b in from_log)


def test_blocks_waiting_for_the_log_writer_stay_bounded(harness, tmp_path):
    lines = text_lines(60_000)
    receiver = BytesReceiver(chunks_of(lines, 100))  # ~6 KB chunks, stored as fast as it can
    h = harness(receiver, conf={"ember.streaming.receiver.writeAheadLog.enable": "true",
                                "ember.streaming.blockInterval": "1h",
                                "ember.streaming.blockMaxBytes": "32k"})
    h.ssc.checkpoint(str(tmp_path / "checkpoints"))
    queued: list[int] = []
    h.ssc.start()
    block_log = h.stream.supervisor.block_log
    write_parts = block_log.wal.write_parts

    def slow_write(parts: Any, time_ms: int) -> Any:  # a disk slower than the source
        time.sleep(0.005)
        return write_parts(parts, time_ms)

    block_log.wal.write_parts = slow_write
    while not receiver.stored.is_set() and len(queued) < 100_000:
        queued.append(sum(len(b.payload) for b in list(block_log._queue)))
        time.sleep(0.001)
    assert receiver.stored.wait(WAIT)
    assert max(queued) <= 3 * (32 << 10) + (8 << 10), "about two blocks wait for the writer"
    h.ssc.stop(stopSparkContext=False, stopGraceFully=True)
    assert h.records() == lines


# ---------------------------------------------------------------------- decoding


@pytest.mark.parametrize("data", [
    b"", b"\n", b"a", b"a\n", b"a\n\nb", b"a\r\nb\r\n", b"a\rb\r\r\n", b"x\r",
    "ü\nçé\n∞\n".encode() * 50, b"".join(b"w %d\r\n" % i for i in range(500)),
    b"".join(b"%d\n" % i for i in range(2000)),
    b"x" * 5000 + b"\n" + b"y" * 10 + b"\n",  # a line longer than a slice
    b"ok\n\xff\xfe bad\nok\n",
])
def test_text_is_decoded_a_slice_at_a_time_exactly_as_a_whole(data, monkeypatch, tmp_path):
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")  # CRLF ends a line too
    whole = text[:-1] if text.endswith("\n") else text
    expected = whole.split("\n") if data else []
    monkeypatch.setattr(inputs, "DECODE_SLICE_BYTES", 64)
    assert list(decode_block(BlockSplit(0, data, CODEC_LINES))) == expected
    path = tmp_path / "block"
    path.write_bytes(data)
    assert list(decode_block(BlockSplit(0, b"", CODEC_LINES, None, "replace",
                                        str(path)))) == expected


def test_strict_decoding_still_fails_on_bad_bytes(monkeypatch):
    monkeypatch.setattr(inputs, "DECODE_SLICE_BYTES", 8)
    with pytest.raises(UnicodeDecodeError):
        list(decode_block(BlockSplit(0, b"fine line\n\xff\n", CODEC_LINES, None, "strict")))


@pytest.mark.parametrize(("text", "size"), [
    (None, 7), ("4194304", 4 << 20), ("4m", 4 << 20), ("512k", 512 << 10), ("1g", 1 << 30),
    ("2 MiB", 2 << 20), ("0", None), ("-1", None), (1024, 1024),
])
def test_sizes_parse_with_binary_units(text, size):
    assert parse_bytes(text, "ember.streaming.blockMaxBytes", 7) == size


def test_a_bad_size_is_refused_naming_the_key():
    with pytest.raises(ValueError, match=r"ember\.streaming\.blockMaxBytes must be a size"):
        parse_bytes("lots", "ember.streaming.blockMaxBytes", 7)
