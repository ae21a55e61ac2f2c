"""Received blocks: how records pushed by receivers are grouped, kept and handed to batches.

A *block* is the records one receiver stored during one block interval (or in one
``storeMany`` call), kept serialized in the driver's memory. At each batch time the tracker
*allocates* every block received since the previous batch to that batch; each block becomes
one partition of the batch's RDD, and the tracker remembers which blocks went to which batch
time for as long as the stream remembers that batch (so a batch recomputed after a driver
restart gets exactly its own blocks back). The block generator cuts blocks from a buffer on a
timer thread, so a receiver's ``store`` never waits for serialization.

With the write-ahead log on, every block carries the handle of its logged record, and
:meth:`ReceivedBlockTracker.snapshot` describes a stream's blocks by those handles for the
metadata checkpoint (see :mod:`ember.streaming._logged_blocks`).
"""

from __future__ import annotations

import itertools
import pickle
import threading
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Block", "BlockGenerator", "ReceivedBlockState", "ReceivedBlockTracker"]

#: Codecs of block payloads: a serialized list of records, or UTF-8 text lines.
CODEC_RECORDS = "records"
CODEC_LINES = "lines"


@attrs.frozen
class Block:
    """One block of received data.

    :ivar payload: the serialized records (``records``) or the raw text (``lines``).
    :ivar num_records: how many records it holds.
    :ivar metadata: what the receiver gave ``storeMany`` with the records (JSON-compatible).
    :ivar wal_handle: where the block is in the write-ahead log (``None`` when not logged).
    """

    block_id: str
    stream_id: int
    payload: bytes
    codec: str
    num_records: int
    serializer: Any = None  # None: the standard library's pickle
    metadata: Any = None
    wal_handle: Any = None

    def records(self) -> list[Any]:
        """Decode the block on the driver (the workers do it for batches)."""
        from ember._engine.inputs import decode_block

        return list(decode_block(self))


def serialize_records(records: list[Any], serializer: Any) -> bytes:
    """Serialize a block's records with ``serializer`` (or pickle when ``None``)."""
    if serializer is None:
        return pickle.dumps(records, pickle.HIGHEST_PROTOCOL)
    return serializer.dumps_batch(records)


@attrs.frozen
class ReceivedBlockState:
    """What a metadata checkpoint keeps of one logged receiver stream's blocks.

    :ivar allocated: batch time → handles of the blocks given to that batch, for every batch
        the stream still remembers (pending ones, and those windows or state may recompute).
    :ivar unallocated: handles of the blocks stored and not yet given to a batch.
    :ivar last_added: the handle of the last block stored; every record after it in the log
        was stored after the snapshot (``None``: nothing stored yet).
    :ivar last_metadata: the metadata of the last block stored with some.
    """

    allocated: dict[int, tuple[Any, ...]]
    unallocated: tuple[Any, ...]
    last_added: Any
    last_metadata: Any = None

    def low_water_ms(self) -> int | None:
        """The time of the oldest logged record this state still needs (``None`` when it
        cannot tell: nothing stored yet). Every record stored later has a later time."""
        handles = [h for hs in self.allocated.values() for h in hs]
        handles += self.unallocated
        if self.last_added is not None:
            handles.append(self.last_added)
        return min((h.time_ms for h in handles), default=None)


class ReceivedBlockTracker:
    """The blocks of every receiver stream, waiting for or allocated to batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unallocated: dict[int, list[Block]] = {}
        self._allocated: dict[int, dict[int, list[Block]]] = {}
        self._last_added: dict[int, Any] = {}
        self._last_metadata: dict[int, Any] = {}
        self._ids = itertools.count()
        self.bytes_held = 0

    def new_block_id(self, stream_id: int) -> str:
        return f"input-{stream_id}-{next(self._ids)}"

    def add(self, block: Block) -> None:
        """Keep a stored block until the next batch takes it."""
        with self._lock:
            self._unallocated.setdefault(block.stream_id, []).append(block)
            self.bytes_held += len(block.payload)
            if block.wal_handle is not None:
                self._last_added[block.stream_id] = block.wal_handle
            if block.metadata is not None:
                self._last_metadata[block.stream_id] = block.metadata

    def allocate(self, stream_id: int, time_ms: int | None = None) -> list[Block]:
        """The blocks of batch ``time_ms`` of ``stream_id``.

        The first call for a time takes every block received so far; later calls for the
        same time (a batch recomputed, or re-run after a driver restart) get the same
        blocks, as long as :meth:`forget` has not dropped that time.
        """
        with self._lock:
            batches = self._allocated.setdefault(stream_id, {})
            if time_ms is not None and time_ms in batches:
                return list(batches[time_ms])
            blocks = self._unallocated.pop(stream_id, [])
            self.bytes_held -= sum(len(b.payload) for b in blocks)
            if time_ms is not None:
                batches[time_ms] = blocks
            return list(blocks)

    def forget(self, stream_id: int, before_ms: int) -> None:
        """Drop the allocations of batches at or before ``before_ms`` (never recomputed)."""
        with self._lock:
            batches = self._allocated.get(stream_id, {})
            for t in [t for t in batches if t <= before_ms]:
                del batches[t]

    def unallocated(self, stream_id: int) -> list[Block]:
        """The blocks of ``stream_id`` stored and not yet given to a batch (a copy)."""
        with self._lock:
            return list(self._unallocated.get(stream_id, ()))

    def has_unallocated(self) -> bool:
        """Whether some stored block has not yet been given to a batch."""
        with self._lock:
            return any(self._unallocated.values())

    def last_metadata(self, stream_id: int) -> Any:
        """The metadata of the last block of ``stream_id`` stored with some (or ``None``)."""
        with self._lock:
            return self._last_metadata.get(stream_id)

    def last_added(self, stream_id: int) -> Any:
        """The write-ahead log handle of the last logged block of ``stream_id`` (or ``None``)."""
        with self._lock:
            return self._last_added.get(stream_id)

    def snapshot(self, stream_id: int) -> ReceivedBlockState:
        """The logged blocks of ``stream_id`` by their handles, for a checkpoint."""
        with self._lock:
            return ReceivedBlockState(
                {t: tuple(b.wal_handle for b in bs if b.wal_handle is not None)
                 for t, bs in self._allocated.get(stream_id, {}).items()},
                tuple(b.wal_handle for b in self._unallocated.get(stream_id, ())
                      if b.wal_handle is not None),
                self._last_added.get(stream_id),
                self._last_metadata.get(stream_id),
            )

    def restore(self, stream_id: int, allocated: dict[int, list[Block]],
                unallocated: list[Block], last_added: Any, last_metadata: Any) -> None:
        """Put back the blocks of ``stream_id`` read from its log after a driver restart.

        ``unallocated`` go in front of any block stored since; batches at the times of
        ``allocated`` get exactly those blocks.
        """
        with self._lock:
            batches = self._allocated.setdefault(stream_id, {})
            for t, blocks in allocated.items():
                batches[t] = list(blocks)
            waiting = self._unallocated.setdefault(stream_id, [])
            waiting[:0] = unallocated
            self.bytes_held += sum(len(b.payload) for b in unallocated)
            if last_added is not None and stream_id not in self._last_added:
                self._last_added[stream_id] = last_added
            if last_metadata is not None and stream_id not in self._last_metadata:
                self._last_metadata[stream_id] = last_metadata


class BlockGenerator:
    """Buffers one receiver's single records and raw text; cuts a block every interval.

    :param push: stores a finished block (blocks while the block is being stored).
    """

    def __init__(self, stream_id: int, interval_s: float, tracker: ReceivedBlockTracker,
                 serializer: Any, push: Callable[[Block], None]) -> None:
        self.stream_id = stream_id
        self.interval_s = interval_s
        self.tracker = tracker
        self.serializer = serializer
        self.push = push
        self._lock = threading.Lock()
        self._records: list[Any] = []
        self._text: list[bytes] = []
        self._text_lines = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name=f"ember-block-generator-{self.stream_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer and store what is buffered as a last block."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
        self.flush()

    def add_record(self, record: Any) -> None:
        with self._lock:
            self._records.append(record)

    def add_text(self, data: bytes, lines: int) -> None:
        with self._lock:
            self._text.append(data)
            self._text_lines += lines

    def make_records_block(self, records: list[Any]) -> Block:
        return Block(self.tracker.new_block_id(self.stream_id), self.stream_id,
                     serialize_records(records, self.serializer), CODEC_RECORDS, len(records),
                     self.serializer)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def flush(self) -> None:
        """Cut the buffered records and text into blocks and store them now."""
        with self._lock:
            records, self._records = self._records, []
            text, self._text = self._text, []
            lines, self._text_lines = self._text_lines, 0
        if records:
            self.push(self.make_records_block(records))
        if text:
            payload = b"".join(text)
            self.push(Block(self.tracker.new_block_id(self.stream_id), self.stream_id,
                            payload, CODEC_LINES, lines))
