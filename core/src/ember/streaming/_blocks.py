"""Received blocks: how records pushed by receivers are grouped, kept and handed to batches.

A *block* is the records one receiver stored during one block interval (or in one
``storeMany`` call, or up to ``ember.streaming.blockMaxBytes`` of text, whichever comes
first), kept serialized in the driver's memory. At each batch time the tracker
*allocates* every block received since the previous batch to that batch; each block becomes
one partition of the batch's RDD, and the tracker remembers which blocks went to which batch
time for as long as the stream remembers that batch (so a batch recomputed after a driver
restart gets exactly its own blocks back). The block generator cuts blocks from a buffer on a
timer thread, so a receiver's ``store`` never waits for serialization; text is also cut as
soon as it reaches the size cap, so a fast source gives a batch many partitions rather than
one huge one.

The driver's memory for blocks is bounded: the tracker counts the bytes of the blocks it
keeps in memory (waiting for a batch, or remembered by one). When the receiver's storage level
allows disk — Spark's default for receivers, ``MEMORY_AND_DISK_SER_2``, does — a block that
would take that count over ``ember.streaming.receiver.spillThreshold`` is written to a file of
the context's local directory (*spilled*), and the workers read it from there. With a
memory-only level, a block that would take it over ``ember.streaming.receiver.maxMemory``
makes the store *wait* until batches free memory (nothing is dropped: the receiving thread
slows down, and a TCP sender with it). Spilled files are removed when their batch is
forgotten, and all of them with the tracker.

With the write-ahead log on, every block carries the handle of its logged record, and
:meth:`ReceivedBlockTracker.snapshot` describes a stream's blocks by those handles for the
metadata checkpoint (see :mod:`ember.streaming._logged_blocks`).
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from typing import Any

import attrs

log = logging.getLogger("ember.streaming")

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
    :ivar path: the file holding the payload when the block was spilled to disk (the
        payload is then empty), else ``None``.
    :ivar spilled_bytes: the size of the payload in that file.
    :ivar offset: where the payload starts in that file.
    :ivar owns_file: whether the file is the block's own (removed with it); a block read
        from the write-ahead log's segment (see ``BlockLog.store``) does not own it.
    """

    block_id: str
    stream_id: int
    payload: bytes
    codec: str
    num_records: int
    serializer: Any = None  # None: the standard library's pickle
    metadata: Any = None
    wal_handle: Any = None
    path: str | None = None
    spilled_bytes: int = 0
    offset: int = 0
    owns_file: bool = True

    @property
    def nbytes(self) -> int:
        """The size of the serialized payload, in memory or in its file."""
        return self.spilled_bytes if self.path is not None else len(self.payload)

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


class _MemoryPolicy:
    """How one stream's blocks may use memory: spill to disk or wait, and when to stop
    waiting (its receiver stopping for good)."""

    def __init__(self, use_disk: bool, stopping: Callable[[], bool],
                 use_memory: bool = True) -> None:
        self.use_disk = use_disk
        self.use_memory = use_memory or not use_disk
        self.stopping = stopping


def _remove_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


class ReceivedBlockTracker:
    """The blocks of every receiver stream, waiting for or allocated to batches.

    Also the driver's memory budget for them (see the module docstring): ``configure``
    sets it, :meth:`set_policy` says per stream whether a block over budget is spilled to
    disk or waits. Unconfigured, every block stays in memory.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # memory was freed
        self._unallocated: dict[int, list[Block]] = {}
        self._allocated: dict[int, dict[int, list[Block]]] = {}
        self._last_added: dict[int, Any] = {}
        self._last_metadata: dict[int, Any] = {}
        self._ids = itertools.count()
        #: Bytes of the blocks not yet given to a batch (in memory or spilled).
        self.bytes_held = 0
        #: Bytes of the blocks kept in the driver's memory (waiting or remembered).
        self.bytes_in_memory = 0
        #: Bytes written to spill files so far (a running total, for reports).
        self.bytes_spilled_total = 0
        self.spill_threshold: int | None = None
        self.max_memory: int | None = None
        self._spill_base: str | None = None
        self._spill_dir: str | None = None
        self._policies: dict[int, _MemoryPolicy] = {}
        self._added: dict[int, int] = {}  # bytes of the blocks ever added, per stream

    def new_block_id(self, stream_id: int) -> str:
        return f"input-{stream_id}-{next(self._ids)}"

    # ------------------------------------------------------------------ memory budget
    def configure(self, spill_threshold: int | None, max_memory: int | None,
                  spill_base: str | None) -> None:
        """Spill blocks of disk-level streams beyond ``spill_threshold`` bytes in memory;
        make memory-only streams wait beyond ``max_memory`` (``None``: no bound). Spill
        files go to a directory of their own under ``spill_base``."""
        with self._lock:
            self.spill_threshold = spill_threshold if spill_threshold else None
            self.max_memory = max_memory if max_memory else None
            self._spill_base = spill_base

    def set_policy(self, stream_id: int, use_disk: bool, stopping: Callable[[], bool],
                   use_memory: bool = True) -> None:
        """Blocks of ``stream_id`` over the budget are spilled (``use_disk``) or wait for
        room until ``stopping()`` is true (then they are kept in memory anyway); with
        ``use_disk`` and not ``use_memory`` (``DISK_ONLY``) every block is spilled."""
        with self._lock:
            self._policies[stream_id] = _MemoryPolicy(use_disk, stopping, use_memory)

    def _place(self, stream_id: int, size: int) -> bool:
        """Reserve memory for a block of ``size`` bytes or decide to spill it (``True``),
        waiting for room when its stream may not use disk. Called with the lock held."""
        policy = self._policies.get(stream_id)
        if not size or policy is None:
            self.bytes_in_memory += size
            return False
        if policy.use_disk and self._spill_base is not None:
            if not policy.use_memory or (self.spill_threshold is not None and
                                         self.bytes_in_memory + size > self.spill_threshold):
                return True
        elif self.max_memory is not None:
            # memory only: wait until batches free memory (a block alone always fits)
            while (self.bytes_in_memory and self.bytes_in_memory + size > self.max_memory
                   and not policy.stopping()):
                self._room.wait(0.05)
        self.bytes_in_memory += size
        return False

    def _spill_file(self, block_id: str, chunks: list[bytes]) -> str:
        """Write ``chunks`` to a file of their own (a temporary name, then renamed: a
        reader never sees a partial file); its path."""
        with self._lock:
            if self._spill_dir is None:
                assert self._spill_base is not None
                os.makedirs(self._spill_base, exist_ok=True)
                self._spill_dir = tempfile.mkdtemp(prefix="received-blocks-",
                                                   dir=self._spill_base)
                weakref.finalize(self, _remove_dir, self._spill_dir)
            directory = self._spill_dir
        path = os.path.join(directory, block_id)
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as f:
            f.writelines(chunks)
        os.replace(tmp, path)
        return path

    def would_spill(self, stream_id: int, size: int) -> bool:
        """Whether a block of ``size`` bytes of ``stream_id`` would be spilled now."""
        with self._lock:
            return self._would_spill(stream_id, size)

    def _would_spill(self, stream_id: int, size: int) -> bool:
        """:meth:`would_spill`, with the lock held."""
        policy = self._policies.get(stream_id)
        if not size or policy is None or not policy.use_disk or self._spill_base is None:
            return False
        return not policy.use_memory or (self.spill_threshold is not None and
                                         self.bytes_in_memory + size > self.spill_threshold)

    def _try_spill(self, block_id: str, chunks: list[bytes], size: int,
                   reserved: bool = True) -> str | None:
        """Spill; on failure (a full disk) say so, and count the block in memory when its
        room was ``reserved`` by :meth:`_place`."""
        try:
            path = self._spill_file(block_id, chunks)
        except OSError as exc:
            log.warning("could not write received block %s to %s (%s): it is kept in "
                        "memory, over ember.streaming.receiver.spillThreshold",
                        block_id, self._spill_dir or self._spill_base, exc)
            if reserved:
                with self._lock:
                    self.bytes_in_memory += size
            return None
        with self._lock:
            self.bytes_spilled_total += size
        return path

    def _release(self, blocks: list[Block]) -> None:
        """Blocks no batch will read again: free their memory, remove their files.
        Called with the lock held."""
        freed = 0
        for b in blocks:
            if b.path is None:
                freed += len(b.payload)
            elif b.owns_file:
                try:
                    os.unlink(b.path)
                except OSError:
                    pass
        if freed:
            self.bytes_in_memory -= freed
            self._room.notify_all()

    # ------------------------------------------------------------------ blocks
    def add(self, block: Block) -> None:
        """Keep a stored block until the next batch takes it (in memory, or spilled to a
        file when over the memory budget; waits for room for a memory-only stream)."""
        if block.path is None:
            size = len(block.payload)
            with self._lock:
                spill = self._place(block.stream_id, size)
            if spill:
                path = self._try_spill(block.block_id, [block.payload], size)
                if path is not None:
                    block = attrs.evolve(block, payload=b"", path=path, spilled_bytes=size)
        self._keep(block)

    def add_text(self, block_id: str, stream_id: int, chunks: list[bytes], lines: int) -> None:
        """:meth:`add` a text block made of ``chunks``, without joining them when the block
        is spilled (they are written to its file one after the other)."""
        size = sum(map(len, chunks))
        with self._lock:
            spill = self._would_spill(stream_id, size)
        path = self._try_spill(block_id, chunks, size, reserved=False) if spill else None
        if path is not None:
            block = Block(block_id, stream_id, b"", CODEC_LINES, lines, path=path,
                          spilled_bytes=size)
        else:
            payload = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            block = Block(block_id, stream_id, payload, CODEC_LINES, lines)
        self.add(block)  # one door for every block (budget, and anything watching adds)

    def added_bytes(self, stream_id: int) -> int:
        """Bytes of the blocks of ``stream_id`` added so far (in memory or spilled)."""
        with self._lock:
            return self._added.get(stream_id, 0)

    def wait_added(self, stream_id: int, at_least: int, stopping: Callable[[], bool]) -> None:
        """Wait until blocks of ``at_least`` bytes of ``stream_id`` were added, or
        ``stopping()`` (a writer that logs blocks before adding them fell behind)."""
        with self._room:
            while self._added.get(stream_id, 0) < at_least and not stopping():
                self._room.wait(0.05)

    def _keep(self, block: Block) -> None:
        with self._lock:
            self._unallocated.setdefault(block.stream_id, []).append(block)
            self.bytes_held += block.nbytes
            self._added[block.stream_id] = self._added.get(block.stream_id, 0) + block.nbytes
            self._room.notify_all()
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
            self.bytes_held -= sum(b.nbytes for b in blocks)
            if time_ms is not None:
                batches[time_ms] = blocks
            else:  # not remembered: the caller holds the only reference
                self.bytes_in_memory -= sum(len(b.payload) for b in blocks if b.path is None)
                self._room.notify_all()
            return list(blocks)

    def forget(self, stream_id: int, before_ms: int) -> None:
        """Drop the allocations of batches at or before ``before_ms`` (never recomputed):
        their memory counts no more, their spill files are removed."""
        with self._lock:
            batches = self._allocated.get(stream_id, {})
            for t in [t for t in batches if t <= before_ms]:
                self._release(batches.pop(t))

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
            self.bytes_held += sum(b.nbytes for b in unallocated)
            self.bytes_in_memory += sum(len(b.payload) for bs in allocated.values() for b in bs)
            self.bytes_in_memory += sum(len(b.payload) for b in unallocated)
            if last_added is not None and stream_id not in self._last_added:
                self._last_added[stream_id] = last_added
            if last_metadata is not None and stream_id not in self._last_metadata:
                self._last_metadata[stream_id] = last_metadata


#: Single records buffered beyond which ``store`` waits for a block being stored.
RECORDS_BACKLOG = 10_000


class BlockGenerator:
    """Buffers one receiver's single records and raw text; cuts a block every interval,
    and a text block as soon as ``max_bytes`` of text are buffered.

    Blocks are stored (``push``) one at a time and in the order their data was buffered,
    whichever thread cuts them (the timer, or a store that filled the buffer).

    :param push: stores a finished block (blocks while the block is being stored).
    :param max_bytes: the size cap of a text block (``None``: the interval alone cuts).
    :param push_text: stores a text block given as its block id, chunks and line count
        (``ReceivedBlockTracker.add_text``, which need not join the chunks); ``None``: text
        blocks go to ``push`` too.
    """

    def __init__(self, stream_id: int, interval_s: float, tracker: ReceivedBlockTracker,
                 serializer: Any, push: Callable[[Block], None],
                 max_bytes: int | None = None,
                 push_text: Callable[[str, int, list[bytes], int], None] | None = None) -> None:
        self.stream_id = stream_id
        self.interval_s = interval_s
        self.tracker = tracker
        self.serializer = serializer
        self.push = push
        self.push_text = push_text
        self.max_bytes = max_bytes if max_bytes and max_bytes > 0 else None
        self._lock = threading.Lock()
        self._push_lock = threading.Lock()  # cut-and-push, so blocks keep their order
        self._records: list[Any] = []
        self._text: list[bytes] = []
        self._text_lines = 0
        self._text_bytes = 0
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
        """Buffer one record. While a block is being stored (it may wait for memory), a
        buffer of :data:`RECORDS_BACKLOG` records makes the caller wait for that store, so
        a receiver held back by a memory bound cannot pile records up here instead."""
        with self._lock:
            self._records.append(record)
            full = len(self._records) >= RECORDS_BACKLOG
        if full and self._push_lock.locked():
            with self._push_lock:
                pass

    def add_text(self, data: bytes, lines: int) -> None:
        """Buffer ``lines`` whole lines of text; cut a block (in this thread) once the
        buffer reaches the size cap. Text larger than the cap is cut at line breaks into
        blocks of about the cap each."""
        cap = self.max_bytes
        if cap is not None and len(data) > cap:
            with self._push_lock:
                self._flush_text()  # what came before goes first
                for piece in _cut_lines(data, cap):
                    self._push_text([piece], piece.count(b"\n"))
            return
        with self._lock:
            self._text.append(data)
            self._text_lines += lines
            self._text_bytes += len(data)
            full = cap is not None and self._text_bytes >= cap
        if full:
            with self._push_lock:
                self._flush_text()

    def make_records_block(self, records: list[Any]) -> Block:
        return Block(self.tracker.new_block_id(self.stream_id), self.stream_id,
                     serialize_records(records, self.serializer), CODEC_RECORDS, len(records),
                     self.serializer)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def flush(self) -> None:
        """Cut the buffered records and text into blocks and store them now."""
        with self._push_lock:
            with self._lock:
                records, self._records = self._records, []
            if records:
                self.push(self.make_records_block(records))
            self._flush_text()

    def _flush_text(self) -> None:
        """Cut the buffered text into a block and store it (with the push lock held)."""
        with self._lock:
            text, self._text = self._text, []
            lines, self._text_lines = self._text_lines, 0
            self._text_bytes = 0
        if text:
            self._push_text(text, lines)

    def _push_text(self, text: list[bytes], lines: int) -> None:
        block_id = self.tracker.new_block_id(self.stream_id)
        if self.push_text is not None:
            self.push_text(block_id, self.stream_id, text, lines)
            return
        payload = text[0] if len(text) == 1 else b"".join(text)
        self.push(Block(block_id, self.stream_id, payload, CODEC_LINES, lines))


def _cut_lines(data: bytes, cap: int) -> list[bytes]:
    """``data`` (whole lines) in pieces of about ``cap`` bytes, each ending at a line break
    (a line longer than ``cap`` is a piece of its own)."""
    pieces = []
    start, n = 0, len(data)
    while start < n:
        end = start + cap
        if end >= n:
            end = n
        else:
            nl = data.rfind(b"\n", start, end)
            if nl < 0:
                nl = data.find(b"\n", end)
            end = n if nl < 0 else nl + 1
        pieces.append(data[start:end])
        start = end
    return pieces
