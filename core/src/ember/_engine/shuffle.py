"""The hash shuffle: map tasks bucket (and first combine) their records by reduce partition,
reduce tasks fetch their bucket from every map output and merge.

A map task writes one file: every bucket serialized back to back, with the offsets returned
to the driver in its map status; a reduce task reads only its own byte range of each file.
With an in-process executor the buckets stay Python lists and nothing is serialized. An
executor whose workers cannot read the driver's files (other machines) supplies a *map output
store* instead: map tasks hand it their serialized buckets, and it keeps them on the workers
(see :meth:`ember.executors.Executor.map_output_store`).
Combining happens on the map side before anything is written, so a word count ships each
distinct word once per map task, not once per occurrence.
"""

from __future__ import annotations

import collections
import os
import pickle
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from ember._engine.partitioning import HashPartitioner, Partitioner, portable_hash
from ember.errors import FetchFailed

__all__ = [
    "Aggregator",
    "FetchFailed",
    "FileMapOutput",
    "MemoryMapOutput",
    "ShuffleSpec",
    "combine_by_key",
    "merge_combiners",
    "read_shuffle",
    "write_shuffle",
]

_MISSING = object()

#: The largest map output written to :attr:`ShuffleSpec.small_directory` (4 MiB).
SMALL_MAP_OUTPUT_BYTES = 4 << 20


@attrs.frozen
class Aggregator:
    """How values of one key are combined: PySpark's ``combineByKey`` triple.

    ``createCombiner`` may be ``None``, meaning the first value is the combiner (the
    ``reduceByKey`` case, which then needs one function call per extra value only).
    """

    createCombiner: Callable[[Any], Any] | None
    mergeValue: Callable[[Any, Any], Any]
    mergeCombiners: Callable[[Any, Any], Any]


@attrs.frozen
class ShuffleSpec:
    """Where and how a shuffle's map outputs are written; travels inside the stage function."""

    shuffle_id: int
    partitioner: Partitioner
    aggregator: Aggregator | None
    map_side_combine: bool
    directory: str | None  # None: keep the buckets in memory (in-process executors)
    serializer: Any = None
    #: The records are bare keys to count (see ``ember._engine.idioms``): combine with
    #: ``collections.Counter``, in C, instead of a Python loop over ``(key, 1)`` pairs.
    count_keys: bool = False
    #: Where map outputs of at most :data:`SMALL_MAP_OUTPUT_BYTES` go instead of
    #: ``directory``: a memory-backed directory (``/dev/shm``), where creating a small file
    #: costs a tenth of what it does on a disk; ``None``: always ``directory``.
    small_directory: str | None = None
    #: The executor's map output store (``Executor.map_output_store()``); when set, map tasks
    #: hand it their serialized buckets instead of writing a file.
    store: Any = None


@attrs.frozen
class MemoryMapOutput:
    """A map task's buckets kept in the driver's memory (in-process executors).

    Kept pickled: ``mergeCombiners`` may modify its first argument (PySpark allows it), so
    every read must get fresh objects or a second read would see the first one's changes.
    """

    map_id: int
    buckets: tuple[bytes | None, ...]

    def read(self, reduce_id: int, serializer: Any, shuffle_id: int) -> list:
        data = self.buckets[reduce_id]
        return [] if data is None else pickle.loads(data)

    def remove(self) -> None:
        return None


@attrs.frozen
class FileMapOutput:
    """A map task's buckets in one file; ``offsets[i]:offsets[i+1]`` is bucket ``i``."""

    map_id: int
    path: str
    offsets: tuple[int, ...]

    def read(self, reduce_id: int, serializer: Any, shuffle_id: int) -> list:
        start, end = self.offsets[reduce_id], self.offsets[reduce_id + 1]
        if start == end:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(start)
                data = f.read(end - start)
        except OSError as exc:
            raise FetchFailed(shuffle_id, self.map_id, str(exc)) from exc
        if len(data) != end - start:
            raise FetchFailed(shuffle_id, self.map_id, f"{self.path} is truncated")
        return serializer.loads_batch(data)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass


def combine_by_key(records: Iterable[tuple[Any, Any]], agg: Aggregator) -> dict:
    """Combine ``(key, value)`` records into ``{key: combiner}``."""
    combined: dict = {}
    merge = agg.mergeValue
    create = agg.createCombiner
    # ``k in d`` then ``d[k]`` measured ~13% faster than ``d.get(k, MISSING)`` here.
    if create is None:
        for k, v in records:
            if k in combined:
                combined[k] = merge(combined[k], v)
            else:
                combined[k] = v
    else:
        for k, v in records:
            if k in combined:
                combined[k] = merge(combined[k], v)
            else:
                combined[k] = create(v)
    return combined


def merge_combiners(
    chunks: Iterable[Any], merge: Callable[[Any, Any], Any]
) -> dict:
    """Merge map-output buckets (each ``[keys, combiners]``, see :func:`write_shuffle`) into
    one ``{key: combiner}`` dict."""
    merged: dict = {}
    for chunk in chunks:
        if not chunk:
            continue
        keys, combiners = chunk
        if not merged:
            merged = dict(zip(keys, combiners, strict=True))
            continue
        get = merged.get
        for k, c in zip(keys, combiners, strict=True):
            cur = get(k, _MISSING)
            merged[k] = c if cur is _MISSING else merge(cur, c)
    return merged


def _partition_of(partitioner: Partitioner) -> Callable[[Any], int] | None:
    """A function from key to reduce partition, or ``None`` for the inlined common case
    (``HashPartitioner`` with :func:`portable_hash`, whose hash of a ``str`` is crc32)."""
    if type(partitioner) is HashPartitioner:
        pf = partitioner.partitionFunc
        if pf is portable_hash:
            return None
        n = partitioner.numPartitions
        return lambda k: pf(k) % n
    return partitioner


def _bucket_unique(items: dict, partitioner: Partitioner) -> list[list]:
    """Split combined records (unique keys) into ``[keys, values]`` per reduce partition."""
    n = partitioner.numPartitions
    if n == 1:
        return [[list(items), list(items.values())]]
    parts: list[dict] = [{} for _ in range(n)]
    part_of = _partition_of(partitioner)
    if part_of is None:
        crc32 = zlib.crc32
        for k, v in items.items():
            if type(k) is str:
                parts[crc32(k.encode("utf-8", "surrogatepass")) % n][k] = v
            else:
                parts[portable_hash(k) % n][k] = v
    else:
        for k, v in items.items():
            parts[part_of(k)][k] = v
    return [[list(d), list(d.values())] if d else [] for d in parts]


def _bucket(records: Iterable[tuple[Any, Any]], partitioner: Partitioner) -> list[list]:
    """Split ``(key, value)`` records into ``[keys, values]`` per reduce partition."""
    n = partitioner.numPartitions
    keys: list[list] = [[] for _ in range(n)]
    values: list[list] = [[] for _ in range(n)]
    if n == 1:
        k0, v0 = keys[0].append, values[0].append
        for k, v in records:
            k0(k)
            v0(v)
    else:
        part_of = _partition_of(partitioner)
        if part_of is None:
            crc32 = zlib.crc32
            for k, v in records:
                i = (crc32(k.encode("utf-8", "surrogatepass")) if type(k) is str
                     else portable_hash(k)) % n
                keys[i].append(k)
                values[i].append(v)
        else:
            for k, v in records:
                i = part_of(k)
                keys[i].append(k)
                values[i].append(v)
    return [[ks, vs] if ks else [] for ks, vs in zip(keys, values, strict=True)]


def write_shuffle(
    records: Iterator[tuple[Any, Any]], spec: ShuffleSpec, map_id: int, attempt: int
) -> MemoryMapOutput | FileMapOutput:
    """Run the map side of a shuffle over one partition's records.

    Each bucket is two parallel lists, ``[keys, values]`` (or ``[]`` when empty): pickling
    two flat lists is about four times faster than a list of pairs, and a reduce task
    rebuilds a dict from them with ``dict(zip(keys, values))`` in C.
    """
    if spec.count_keys:
        buckets = _bucket_unique(collections.Counter(records), spec.partitioner)
    elif spec.aggregator is not None and spec.map_side_combine:
        buckets = _bucket_unique(combine_by_key(records, spec.aggregator), spec.partitioner)
    else:
        buckets = _bucket(records, spec.partitioner)
    if spec.store is not None:
        dumps = spec.serializer.dumps_batch
        return spec.store.put(spec.shuffle_id, map_id, attempt,
                              [dumps(b) if b else b"" for b in buckets])
    if spec.directory is None:
        return MemoryMapOutput(
            map_id, tuple(pickle.dumps(b, pickle.HIGHEST_PROTOCOL) if b else None for b in buckets)
        )
    name = f"shuffle-{spec.shuffle_id}-{map_id}-{attempt}.data"
    offsets = [0]
    dumps = spec.serializer.dumps_batch
    held: list[bytes] = []  # small outputs are written in one go to the fast directory
    f = None
    path = os.path.join(spec.directory, name)
    try:
        for bucket in buckets:
            data = dumps(bucket) if bucket else b""
            offsets.append(offsets[-1] + len(data))
            if f is None and (spec.small_directory is None
                              or offsets[-1] > SMALL_MAP_OUTPUT_BYTES):
                f = open(path, "wb")  # closed below, also on error
                f.writelines(held)
                held = []
            if f is None:
                held.append(data)
            elif data:
                f.write(data)
    finally:
        if f is not None:
            f.close()
    if f is None:
        path = os.path.join(spec.small_directory, name)  # type: ignore[arg-type]
        with open(path, "wb") as small:
            small.writelines(held)
    return FileMapOutput(map_id, path, tuple(offsets))


def _pairs(chunks: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
    for chunk in chunks:
        if chunk:
            yield from zip(*chunk, strict=True)


def read_shuffle(
    outputs: list[Any], reduce_id: int, spec: ShuffleSpec
) -> Iterator[tuple[Any, Any]]:
    """Run the reduce side of a shuffle: this partition's records, merged by key if asked."""
    chunks = (o.read(reduce_id, spec.serializer, spec.shuffle_id) for o in outputs)
    agg = spec.aggregator
    if agg is None:
        return _pairs(chunks)
    if spec.map_side_combine:
        return iter(merge_combiners(chunks, agg.mergeCombiners).items())
    return iter(combine_by_key(_pairs(chunks), agg).items())
