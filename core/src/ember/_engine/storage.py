"""Cached partitions (``persist``) and reliable checkpoints of RDDs.

A persisted RDD's partition is a *block* named ``rdd_<id>_<partition>``. Where it lives
follows the storage level: objects in the memory of the worker that computed it, serialized
bytes in a shared-memory directory every worker reads, or a file on disk. When the workers do
not share the driver's files (``Executor.shares_driver_files`` is false), serialized and
disk levels keep their bytes in the memory of the worker that computed them instead. Tasks
report the blocks they stored; the driver keeps the registry, routes tasks to the worker
holding a block in memory, and forgets a worker's blocks when that worker is replaced. A
block that turns out to be missing is recomputed from lineage, never an error.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from ember._engine import worker
from ember._engine.inputs import read_frames, write_frames
from ember.storagelevel import StorageLevel

__all__ = ["BlockRegistry", "CachedSplit", "CachingCompute", "CheckpointSplit", "read_checkpoint"]


@attrs.frozen
class CachedSplit:
    """A partition of a persisted RDD: its block id plus how to compute it when missing."""

    index: int
    block_id: str
    inner: Any


def _serialize(serializer: Any, records: list) -> bytes:
    if serializer is None:
        return pickle.dumps(records, pickle.HIGHEST_PROTOCOL)
    return serializer.dumps_batch(records)


def _deserialize(serializer: Any, data: bytes) -> list:
    if serializer is None:
        return pickle.loads(data)
    return serializer.loads_batch(data)


class CachingCompute:
    """Compute a partition through its block: read it if stored, else compute and store."""

    def __init__(
        self,
        inner: Callable[[Any], Iterator[Any]],
        level: StorageLevel,
        memory_dir: str | None,
        disk_dir: str | None,
        serializer: Any,
    ) -> None:
        self.inner = inner
        self.level = level
        self.memory_dir = memory_dir
        self.disk_dir = disk_dir
        self.serializer = serializer

    def _file(self, block_id: str) -> str | None:
        level = self.level
        if level.useDisk:
            return None if self.disk_dir is None else os.path.join(self.disk_dir, block_id)
        if level.useMemory and not level.deserialized and self.memory_dir is not None:
            return os.path.join(self.memory_dir, block_id)
        return None

    def __call__(self, split: CachedSplit) -> Iterator[Any]:
        level = self.level
        keep_objects = level.useMemory and level.deserialized
        path = self._file(split.block_id)
        # No shared directory (workers elsewhere): serialized levels keep bytes in memory.
        keep_bytes = path is None and not keep_objects and (level.useMemory or level.useDisk)
        if keep_objects or keep_bytes:
            hit = worker.memory_blocks.get(split.block_id)
            if hit is not None:
                return iter(hit if keep_objects else _deserialize(self.serializer, hit))
        if path is not None and os.path.exists(path):
            try:
                with open(path, "rb") as f:
                    records = _deserialize(self.serializer, f.read())
            except (OSError, EOFError, pickle.UnpicklingError):
                records = None
            if records is not None:
                if keep_objects:
                    worker.memory_blocks[split.block_id] = records
                return iter(records)
        records = list(self.inner(split.inner))
        task = worker.current_task()
        if keep_objects or keep_bytes:
            stored = records if keep_objects else _serialize(self.serializer, records)
            worker.memory_blocks[split.block_id] = stored
            if task is not None:
                task.stored_blocks.append((split.block_id, "memory", None))
        if path is not None:
            tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
            with open(tmp, "wb") as f:
                f.write(_serialize(self.serializer, records))
            os.replace(tmp, path)
            if task is not None:
                task.stored_blocks.append((split.block_id, "file", path))
        return iter(records)


class BlockRegistry:
    """The driver's record of which cached blocks exist and where (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._memory: dict[str, tuple[int | None, int]] = {}  # block -> (slot, worker pid)
        self._files: dict[str, str] = {}

    def add(self, block_id: str, kind: str, path: str | None, slot: int | None, pid: int) -> None:
        with self._lock:
            if kind == "memory":
                self._memory[block_id] = (slot, pid)
            elif path is not None:
                self._files[block_id] = path

    def worker_replaced(self, slot: int | None, live_pid: int) -> None:
        """Forget the memory blocks of ``slot`` held by any process other than ``live_pid``."""
        with self._lock:
            for b, (s, pid) in list(self._memory.items()):
                if s == slot and pid != live_pid:
                    del self._memory[b]

    def has(self, block_id: str) -> bool:
        with self._lock:
            return block_id in self._memory or block_id in self._files

    def preferred_slot(self, block_id: str) -> int | None:
        with self._lock:
            loc = self._memory.get(block_id)
            return loc[0] if loc else None

    def remove_prefix(self, prefix: str) -> list[str]:
        """Forget every block whose id starts with ``prefix``; returns the files to delete."""
        with self._lock:
            for b in [b for b in self._memory if b.startswith(prefix)]:
                del self._memory[b]
            doomed = [b for b in self._files if b.startswith(prefix)]
            return [self._files.pop(b) for b in doomed]


@attrs.frozen
class CheckpointSplit:
    """A partition read back from a reliable checkpoint file."""

    index: int
    path: str


def read_checkpoint(serializer: Any) -> Callable[[CheckpointSplit], Iterator[Any]]:
    """A compute function reading checkpoint files written by :func:`write_checkpoint_part`."""

    def compute(split: CheckpointSplit) -> Iterator[Any]:
        for frame in read_frames(split.path):
            yield from _deserialize(serializer, frame)

    return compute


def write_checkpoint_part(records: Iterator[Any], path: str, serializer: Any) -> str:
    """Write one partition to ``path`` atomically (temporary name, fsync, rename)."""
    write_frames(path, [_serialize(serializer, list(records))])
    return path
