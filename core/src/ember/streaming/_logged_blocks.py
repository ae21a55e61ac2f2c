"""Received blocks in the write-ahead log: how they are logged, and recovered after a crash.

Invariants
----------
- A block is logged and added to the tracker in one step, under its stream's log lock, so
  the order of a stream's records in the log is the order its blocks were added, and the
  times given to the log never decrease.
- A metadata checkpoint holds, per logged stream, a :class:`ReceivedBlockState`: the handles
  of the blocks allocated to each batch the stream remembers, of those not yet allocated,
  and of the last block added. Every record after that last one in the log was stored after
  the checkpoint was taken.
- On restart, the batches of the checkpoint get exactly their blocks back (read from the
  log); the unallocated blocks and every record logged after the checkpoint go to the next
  batch. A record the checkpoint names but the log no longer has is an error, never a
  silent gap.
- After each checkpoint is written, the log is cleaned up to the oldest record that any of
  the last few checkpoints still needs (older generations may be fallen back to), so the
  log of a stream that runs for ever stays bounded.

A fresh start (no checkpoint to recover) over a stream directory that already holds records:
when the checkpoint directory holds no checkpoint at all, the previous driver died before it
wrote its first one, and its logged blocks — acknowledged to their source — go to the first
batch; when it holds checkpoints, they belong to an earlier run that is not being recovered,
and are deleted with a warning.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ember.streaming._blocks import Block, ReceivedBlockState, ReceivedBlockTracker

if TYPE_CHECKING:
    from ember.streaming.context import StreamingContext
    from ember.wal import WriteAheadLog

__all__ = ["BlockLog", "decode_block", "encode_block", "open_block_log"]

log = logging.getLogger("ember.streaming")

_META_LEN = struct.Struct("<I")
#: The directory, under the checkpoint directory, of the streams' logs.
RECEIVED_DATA = "receivedData"


def encode_block(block: Block) -> bytes:
    """A block as one log record: a JSON description, then the payload as it is."""
    return b"".join(encode_block_parts(block))


def encode_block_parts(block: Block) -> tuple[bytes, bytes]:
    """The record of :func:`encode_block` in two parts: the description and the payload."""
    meta: dict[str, Any] = {
        "id": block.block_id, "stream": block.stream_id, "codec": block.codec,
        "n": block.num_records,
        "ser": None if block.serializer is None else block.serializer.name,
    }
    if block.metadata is not None:
        meta["meta"] = block.metadata
    head = json.dumps(meta, separators=(",", ":")).encode()
    return _META_LEN.pack(len(head)) + head, block.payload


def decode_block(data: bytes, handle: Any) -> Block:
    """The block of a log record written by :func:`encode_block`."""
    (n,) = _META_LEN.unpack_from(data)
    meta = json.loads(data[_META_LEN.size:_META_LEN.size + n])
    serializer = None
    if meta["ser"] is not None:
        from ember.serializers import get_serializer

        serializer = get_serializer(meta["ser"])
    return Block(meta["id"], meta["stream"], data[_META_LEN.size + n:], meta["codec"], meta["n"],
                 serializer, meta.get("meta"), handle)


def check_metadata(metadata: Any) -> None:
    """Refuse block metadata the log could not keep as it is (it must be JSON-compatible)."""
    if metadata is None:
        return
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"storeMany metadata must be JSON-compatible (numbers, strings, lists, dicts): "
            f"it is kept with the block in the write-ahead log; got {metadata!r:.80} ({exc})"
        ) from None


class BlockLog:
    """The write-ahead log of one receiver stream, and what the checkpoints need of it.

    ``storeMany`` blocks are logged by :meth:`store`, in the receiver's thread (it returns
    once the block is logged). The blocks the block generator cuts from ``store`` and
    ``storeBytes`` data go through :meth:`submit` to a writer thread, so that the generator
    keeps cutting a block every interval while the disk writes the previous one: blocks
    stay the size of one interval (one partition each), and a slow disk does not make them
    grow. Either way a block reaches the tracker only once it is logged.
    """

    def __init__(self, wal: WriteAheadLog, stream_id: int, tracker: ReceivedBlockTracker,
                 clock: Any, generations: int) -> None:
        self.wal = wal
        self.stream_id = stream_id
        self.tracker = tracker
        self.clock = clock
        #: Called with ``(block, error)`` when logging a submitted block failed (the block
        #: is then kept in memory only).
        self.on_error: Callable[[Block, BaseException], None] | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: collections.deque[Block] = collections.deque()
        self._closing = False
        self._writer: threading.Thread | None = None
        last = tracker.last_added(stream_id)
        self._last_ms = last.time_ms if last is not None else -(2**62)
        # The low-water marks of the last checkpoints written: any of them may be read back.
        self._low_waters: collections.deque[int | None] = collections.deque(
            maxlen=2 * max(1, generations) + 2)
        self._cleaned_to: int | None = None

    def store(self, block: Block) -> None:
        """Log ``block``, then hand it to the tracker; returns once it is logged."""
        self.store_many([block])

    def store_many(self, blocks: list[Block]) -> None:
        """Log ``blocks`` together (one write, one sync), then hand them to the tracker in
        order; returns once they are logged."""
        records = [encode_block_parts(b) for b in blocks]
        with self._lock:
            # Times never go back in one log (a manual clock restarts at the checkpoint).
            now = max(self.clock.now_ms(), self._last_ms)
            handles = self.wal.write_many(records, now)
            self._last_ms = now
            for block, handle, parts in zip(blocks, handles, records, strict=True):
                self.tracker.add(self._logged(block, handle, len(parts[0])))

    def _logged(self, block: Block, handle: Any, head: int) -> Block:
        """``block`` with its handle; when it would be spilled, a block that the workers
        read from the log's segment instead (it is on disk already: no second write)."""
        logged = Block(block.block_id, block.stream_id, block.payload, block.codec,
                       block.num_records, block.serializer, block.metadata, handle)
        size = len(block.payload)
        if block.path is not None or not self.tracker.would_spill(block.stream_id, size):
            return logged
        where = self.wal.location(handle)
        if where is None:
            return logged
        path, offset = where
        return attrs.evolve(logged, payload=b"", path=path, offset=offset + head,
                            spilled_bytes=size, owns_file=False)

    def submit(self, block: Block) -> None:
        """Log ``block`` in the writer thread, then hand it to the tracker (returns at once)."""
        with self._cond:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, daemon=True,
                                                name=f"ember-wal-writer-{self.stream_id}")
                self._writer.start()
            self._queue.append(block)
            self._cond.notify_all()

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                # every block waiting goes in one group commit (one sync for all)
                blocks = list(self._queue)
                self._queue.clear()
            try:
                self.store_many(blocks)
            except Exception as exc:
                for block in blocks:
                    self.tracker.add(block)
                    if self.on_error is not None:
                        self.on_error(block, exc)
                if self.on_error is None:
                    log.error("writing %d block(s) of stream %d to the write-ahead log failed",
                              len(blocks), self.stream_id, exc_info=exc)

    def checkpoint_written(self, state: ReceivedBlockState) -> None:
        """A checkpoint holding ``state`` is on disk: clean what no recent checkpoint needs."""
        self._low_waters.append(state.low_water_ms())
        if None in self._low_waters:
            return
        self._clean(min(self._low_waters))  # type: ignore[type-var]

    def no_checkpoints(self, state: ReceivedBlockState) -> None:
        """Metadata checkpoints are off (nothing can be recovered): keep only what the
        running stream still needs, as ``state`` describes it."""
        low = state.low_water_ms()
        if low is not None:
            self._clean(low)

    def _clean(self, threshold: int) -> None:
        if self._cleaned_to is not None and threshold <= self._cleaned_to:
            return
        try:
            self.wal.clean(threshold)
        except Exception:
            log.exception("cleaning the write-ahead log of stream %d failed", self.stream_id)
            return
        self._cleaned_to = threshold

    def close(self) -> None:
        """Log the submitted blocks still waiting, then close the log."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()
        self.wal.close()


def log_directory(checkpoint_dir: str, stream_id: int) -> str:
    """``<checkpoint dir>/receivedData/<stream id>``."""
    return os.path.join(checkpoint_dir, RECEIVED_DATA, str(stream_id))


def open_block_log(ssc: StreamingContext, stream_id: int,
                   tracker: ReceivedBlockTracker) -> BlockLog:
    """Open stream ``stream_id``'s log and put the blocks it must recover into ``tracker``."""
    from ember.streaming._checkpoint import _checkpoint_files
    from ember.wal import create_write_ahead_log

    conf = ssc.sparkContext._conf
    assert ssc._checkpoint_dir is not None
    directory = log_directory(ssc._checkpoint_dir, stream_id)
    wal = create_write_ahead_log(directory, conf)
    try:
        restored = ssc._restored
        state: ReceivedBlockState | None = None
        if restored is not None:
            state = getattr(restored, "received_blocks", {}).get(stream_id)
        elif _checkpoint_files(ssc._checkpoint_dir):
            _discard(wal, stream_id, directory)
        pending = set(restored.pending_ms) if restored is not None else set()
        _recover(wal, stream_id, tracker, state, pending, fresh=restored is None)
    except BaseException:
        wal.close()
        raise
    gens = conf.getInt("ember.streaming.checkpoint.generations", 5) or 5
    return BlockLog(wal, stream_id, tracker, ssc.clock, gens)


def _discard(wal: WriteAheadLog, stream_id: int, directory: str) -> None:
    from ember.wal import WALError

    try:
        count: int | str = sum(1 for _ in wal.readAll())
    except WALError:  # damaged: it goes all the same
        count = "the"
    if count:
        log.warning(
            "stream %d: deleting %s block(s) in the write-ahead log %s: they belong to an "
            "earlier run of this checkpoint directory, and this StreamingContext was not "
            "recovered from it (use StreamingContext.getOrCreate to recover)",
            stream_id, count, directory,
        )
    wal.clean(2**62)


def _recover(wal: WriteAheadLog, stream_id: int, tracker: ReceivedBlockTracker,
             state: ReceivedBlockState | None, pending: set[int], fresh: bool) -> None:
    from ember.wal import WALError

    wanted: set[Any] = set()
    if state is not None:
        wanted.update(state.unallocated)
        for handles in state.allocated.values():
            wanted.update(handles)
    last = state.last_added if state is not None else None
    found: dict[Any, Block] = {}
    after: list[Block] = []
    for record in wal.readAll():
        h = record.handle
        if h in wanted:
            found[h] = decode_block(record.data, h)
        elif last is None or h > last:
            after.append(decode_block(record.data, h))
    allocations = dict(state.allocated) if state is not None else {}
    for t, hs in list(allocations.items()):
        if t not in pending and not set(hs) <= found.keys():
            # a completed batch the stream remembers (for windows, say): it can no longer be
            # recomputed, but nothing of it is lost, since its output was written
            log.warning("stream %d: some blocks of the completed batch %d ms are no longer in "
                        "the write-ahead log; it cannot be recomputed", stream_id, t)
            del allocations[t]
    missing = set(state.unallocated if state is not None else ()) - found.keys()
    missing.update(h for hs in allocations.values() for h in hs if h not in found)
    if missing:
        first = min(missing)
        batches = sorted(t for t, hs in allocations.items() if first in hs)
        raise WALError(
            f"stream {stream_id}: {len(missing)} logged block(s) the checkpoint needs are "
            f"not in the write-ahead log (the first: {first}, "
            + (f"of batch {batches[0]} ms" if batches else "not yet in a batch")
            + "); their segments were deleted. Recovering would lose them silently, so it "
            "stops: restore the segments, or start with a new checkpoint directory"
        )
    allocated = {t: [found[h] for h in hs] for t, hs in allocations.items()}
    unallocated = [found[h] for h in state.unallocated] if state else []
    unallocated += after
    last_added = after[-1].wal_handle if after else last
    metadata = state.last_metadata if state is not None else None
    for block in after:
        if block.metadata is not None:
            metadata = block.metadata
    tracker.restore(stream_id, allocated, unallocated, last_added, metadata)
    if after and fresh:
        log.warning(
            "stream %d: %d block(s) (%d records) were logged by a driver that stopped before "
            "its first checkpoint; they go to the first batch", stream_id, len(after),
            sum(b.num_records for b in after),
        )
    elif allocated or unallocated:
        log.info(
            "stream %d: recovered %d block(s) of %d batch(es) and %d block(s) not yet in a "
            "batch from the write-ahead log", stream_id,
            sum(len(b) for b in allocated.values()), len(allocated), len(unallocated),
        )
