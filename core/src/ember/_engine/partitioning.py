"""Partitioners: which reduce partition a key goes to.

``portable_hash`` gives the same number for the same key in every process, whatever
``PYTHONHASHSEED`` is, for the key types people use (str, bytes, numbers, None, tuples of
those), so hash partitioning is stable across workers and across restarts of the driver.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["HashPartitioner", "Partitioner", "RangePartitioner", "portable_hash"]


def portable_hash(key: Any) -> int:
    """A hash of ``key`` that is the same in every Python process.

    >>> portable_hash("ember") == portable_hash("ember")
    True
    """
    if isinstance(key, str):
        return zlib.crc32(key.encode("utf-8", "surrogatepass"))
    if key is None:
        return 0
    if isinstance(key, (bytes, bytearray, memoryview)):
        return zlib.crc32(key)
    if isinstance(key, tuple):
        h = 0x345678
        for item in key:
            h ^= portable_hash(item)
            h = (h * 1000003) & 0xFFFFFFFFFFFF
        h ^= len(key)
        return h
    return hash(key)


class Partitioner:
    """Maps a key to one of ``numPartitions`` partitions.

    Two partitioners are equal when they send every key to the same partition, which lets
    an operation on data already partitioned that way skip its shuffle.
    """

    def __init__(self, numPartitions: int, partitionFunc: Callable[[Any], int]) -> None:
        if not isinstance(numPartitions, int) or numPartitions < 1:
            raise ValueError(f"numPartitions must be an integer >= 1, got {numPartitions!r}")
        self.numPartitions = numPartitions
        self.partitionFunc = partitionFunc

    def __call__(self, key: Any) -> int:
        return self.partitionFunc(key) % self.numPartitions

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and other.numPartitions == self.numPartitions  # type: ignore[attr-defined]
            and other.partitionFunc == self.partitionFunc  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((type(self), self.numPartitions))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.numPartitions})"


class HashPartitioner(Partitioner):
    """``partitionFunc(key) % numPartitions``, by default with :func:`portable_hash`."""

    def __init__(
        self, numPartitions: int, partitionFunc: Callable[[Any], int] = portable_hash
    ) -> None:
        super().__init__(numPartitions, partitionFunc)


class RangePartitioner(Partitioner):
    """Keys in sorted ranges: partition ``i`` holds keys between ``bounds[i-1]`` and ``bounds[i]``.

    :param bounds: the ``numPartitions - 1`` upper bounds, sorted ascending by ``keyfunc``.
    :param ascending: when false, partition 0 holds the largest keys.
    """

    def __init__(
        self,
        bounds: Sequence[Any],
        ascending: bool = True,
        keyfunc: Callable[[Any], Any] | None = None,
    ) -> None:
        self.bounds = list(bounds)
        self.ascending = ascending
        self.keyfunc = keyfunc
        super().__init__(len(self.bounds) + 1, self._position)

    def _position(self, key: Any) -> int:
        k = self.keyfunc(key) if self.keyfunc is not None else key
        i = bisect.bisect_left(self.bounds, k)
        return i if self.ascending else self.numPartitions - 1 - i

    def __call__(self, key: Any) -> int:
        return self._position(key)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RangePartitioner)
            and other.bounds == self.bounds
            and other.ascending == self.ascending
            and other.keyfunc == self.keyfunc
        )

    def __hash__(self) -> int:
        return hash((RangePartitioner, self.numPartitions))
