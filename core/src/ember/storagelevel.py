"""Storage levels for ``persist``: where a cached partition lives and in what form."""

from __future__ import annotations

import attrs

__all__ = ["StorageLevel"]


@attrs.frozen(repr=False)
class StorageLevel:
    """Where and how a persisted RDD keeps its partitions (PySpark's names and flags).

    - ``MEMORY_ONLY``: the records as Python objects, in the memory of the worker that computed
      them. A task that runs on another worker, or after that worker died, recomputes the
      partition from its lineage.
    - ``MEMORY_ONLY_SER``: serialized bytes in shared memory that every worker can read.
    - ``DISK_ONLY``: serialized bytes in a file under the context's local directory.
    - ``MEMORY_AND_DISK`` / ``MEMORY_AND_DISK_SER``: objects (or bytes) in memory plus a
      serialized copy on disk that any worker can read.

    The ``_2`` variants are accepted for compatibility; on one machine they are kept once.
    """

    useDisk: bool
    useMemory: bool
    useOffHeap: bool = False
    deserialized: bool = False
    replication: int = 1

    def __repr__(self) -> str:
        return (
            f"StorageLevel({self.useDisk}, {self.useMemory}, {self.useOffHeap}, "
            f"{self.deserialized}, {self.replication})"
        )

    def __str__(self) -> str:
        parts = []
        if self.useDisk:
            parts.append("Disk")
        if self.useMemory:
            parts.append("Memory")
        parts.append("Deserialized" if self.deserialized else "Serialized")
        return f"{' '.join(parts)} {self.replication}x Replicated"


StorageLevel.NONE = StorageLevel(False, False, False, False)
StorageLevel.DISK_ONLY = StorageLevel(True, False, False, False)
StorageLevel.DISK_ONLY_2 = StorageLevel(True, False, False, False, 2)
StorageLevel.MEMORY_ONLY = StorageLevel(False, True, False, True)
StorageLevel.MEMORY_ONLY_2 = StorageLevel(False, True, False, True, 2)
StorageLevel.MEMORY_ONLY_SER = StorageLevel(False, True, False, False)
StorageLevel.MEMORY_ONLY_SER_2 = StorageLevel(False, True, False, False, 2)
StorageLevel.MEMORY_AND_DISK = StorageLevel(True, True, False, True)
StorageLevel.MEMORY_AND_DISK_2 = StorageLevel(True, True, False, True, 2)
StorageLevel.MEMORY_AND_DISK_SER = StorageLevel(True, True, False, False)
StorageLevel.MEMORY_AND_DISK_SER_2 = StorageLevel(True, True, False, False, 2)
StorageLevel.MEMORY_AND_DISK_DESER = StorageLevel.MEMORY_AND_DISK
StorageLevel.OFF_HEAP = StorageLevel(True, True, True, False)
