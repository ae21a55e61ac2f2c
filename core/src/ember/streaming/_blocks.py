"""Received blocks: how records pushed by receivers are grouped, kept and handed to batches.

A *block* is the records one receiver stored during one block interval (or in one
``storeMany`` call), kept serialized in the driver's memory. At each batch time the tracker
*allocates* every block received since the previous batch to that batch; each block becomes
one partition of the batch's RDD. The block generator cuts blocks from a buffer on a timer
thread, so a receiver's ``store`` never waits for serialization.
"""

from __future__ import annotations

import itertools
import pickle
import threading
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Block", "BlockGenerator", "ReceivedBlockTracker"]

#: Codecs of block payloads: a serialized list of records, or UTF-8 text lines.
CODEC_RECORDS = "records"
CODEC_LINES = "lines"


@attrs.frozen
class Block:
    """One block of received data.

    :ivar payload: the serialized records (``records``) or the raw text (``lines``).
    :ivar num_records: how many records it holds.
    """

    block_id: str
    stream_id: int
    payload: bytes
    codec: str
    num_records: int
    serializer: Any = None  # None: the standard library's pickle

    def records(self) -> list[Any]:
        """Decode the block on the driver (the workers do it for batches)."""
        from ember._engine.inputs import decode_block

        return list(decode_block(self))


def serialize_records(records: list[Any], serializer: Any) -> bytes:
    """Serialize a block's records with ``serializer`` (or pickle when ``None``)."""
    if serializer is None:
        return pickle.dumps(records, pickle.HIGHEST_PROTOCOL)
    return serializer.dumps_batch(records)


class ReceivedBlockTracker:
    """The blocks of every receiver stream, waiting for or allocated to batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unallocated: dict[int, list[Block]] = {}
        self._ids = itertools.count()
        self.bytes_held = 0

    def new_block_id(self, stream_id: int) -> str:
        return f"input-{stream_id}-{next(self._ids)}"

    def add(self, block: Block) -> None:
        """Keep a stored block until the next batch takes it."""
        with self._lock:
            self._unallocated.setdefault(block.stream_id, []).append(block)
            self.bytes_held += len(block.payload)

    def allocate(self, stream_id: int) -> list[Block]:
        """Every block of ``stream_id`` received so far, now owned by the calling batch."""
        with self._lock:
            blocks = self._unallocated.pop(stream_id, [])
            self.bytes_held -= sum(len(b.payload) for b in blocks)
            return blocks

    def unallocated(self, stream_id: int) -> list[Block]:
        """The blocks of ``stream_id`` stored and not yet given to a batch (a copy)."""
        with self._lock:
            return list(self._unallocated.get(stream_id, ()))

    def has_unallocated(self) -> bool:
        """Whether some stored block has not yet been given to a batch."""
        with self._lock:
            return any(self._unallocated.values())


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
