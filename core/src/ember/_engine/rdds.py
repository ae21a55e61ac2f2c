"""The internal kinds of RDD: how each one's partitions are described and computed.

Every RDD answers three questions for the scheduler: its *splits* (one small picklable
descriptor per partition, ``split.index`` being the partition number), its *compute*
function (``compute(split) -> iterator``, picklable, built from the parents' compute
functions), and which shuffles it needs that are not computed yet.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from ember._engine.inputs import (
    BlockSplit,
    DataSplit,
    FileSplit,
    binary_record_splits,
    decode_block,
    load_data_split,
    read_binary_records,
    read_frames,
    read_text_split,
    slice_collection,
    text_splits,
)
from ember._engine.partitioning import Partitioner
from ember._engine.shuffle import Aggregator, ShuffleSpec, read_shuffle
from ember.errors import FetchFailed
from ember.rdd import RDD

if TYPE_CHECKING:
    from ember.context import Context

__all__ = [
    "BinaryRecordsRDD",
    "BlockRDD",
    "CoalescedRDD",
    "ParallelCollectionRDD",
    "PickleFileRDD",
    "PipelinedRDD",
    "ShuffledRDD",
    "TextFileRDD",
    "UnionRDD",
    "ZippedPartitionsRDD",
]


# --------------------------------------------------------------------------- sources


class ParallelCollectionRDD(RDD):
    """``parallelize``: a driver-side collection cut into contiguous slices."""

    def __init__(self, ctx: Context, data: Any, num_slices: int) -> None:
        super().__init__(ctx)
        pickled = not ctx._executor.in_process
        self._split_list = []
        for i, part in enumerate(slice_collection(data, num_slices)):
            if pickled and not isinstance(part, range):
                payload: Any = ctx._pickle_data(list(part))
                self._split_list.append(DataSplit(i, payload, True))
            else:
                self._split_list.append(DataSplit(i, part, False))

    def _raw_num_partitions(self) -> int:
        return len(self._split_list)

    def _raw_splits(self) -> list[Any]:
        return self._split_list

    def _raw_compute(self) -> Callable[[Any], Iterator[Any]]:
        return load_data_split


class _ReadText:
    def __init__(self, use_unicode: bool) -> None:
        self.use_unicode = use_unicode

    def __call__(self, split: FileSplit) -> Iterator[Any]:
        return read_text_split(split, self.use_unicode)


class TextFileRDD(RDD):
    """``textFile``: lines of text files, split by byte ranges."""

    def __init__(self, ctx: Context, path: str | list[str], min_partitions: int,
                 use_unicode: bool) -> None:
        super().__init__(ctx)
        self._split_list = text_splits(path, min_partitions)
        self._use_unicode = use_unicode
        self._path = path

    def _raw_num_partitions(self) -> int:
        return len(self._split_list)

    def _raw_splits(self) -> list[Any]:
        return self._split_list

    def _raw_compute(self) -> Callable[[Any], Iterator[Any]]:
        return _ReadText(self._use_unicode)

    def __repr__(self) -> str:
        return f"{self._path} TextFileRDD[{self.id}]"


class _ReadBinary:
    def __init__(self, record_length: int) -> None:
        self.record_length = record_length

    def __call__(self, split: FileSplit) -> Iterator[bytes]:
        return read_binary_records(split, self.record_length)


class BinaryRecordsRDD(RDD):
    """``binaryRecords``: fixed-length byte records, files split at record boundaries."""

    def __init__(self, ctx: Context, path: str | list[str], record_length: int,
                 min_partitions: int) -> None:
        super().__init__(ctx)
        self._split_list = binary_record_splits(path, record_length, min_partitions)
        self._record_length = record_length
        self._path = path

    def _raw_num_partitions(self) -> int:
        return len(self._split_list)

    def _raw_splits(self) -> list[Any]:
        return self._split_list

    def _raw_compute(self) -> Callable[[Any], Iterator[Any]]:
        return _ReadBinary(self._record_length)

    def __repr__(self) -> str:
        return f"{self._path} BinaryRecordsRDD[{self.id}]"


@attrs.frozen
class _PathSplit:
    index: int
    path: str


class _ReadFrames:
    def __init__(self, serializer: Any) -> None:
        self.serializer = serializer

    def __call__(self, split: _PathSplit) -> Iterator[Any]:
        for frame in read_frames(split.path):
            yield from self.serializer.loads_batch(frame)


class PickleFileRDD(RDD):
    """``pickleFile``: records written by ``saveAsPickleFile``, one file a partition."""

    def __init__(self, ctx: Context, paths: list[str]) -> None:
        super().__init__(ctx)
        self._split_list = [_PathSplit(i, p) for i, p in enumerate(paths)]

    def _raw_num_partitions(self) -> int:
        return len(self._split_list)

    def _raw_splits(self) -> list[Any]:
        return self._split_list

    def _raw_compute(self) -> Callable[[Any], Iterator[Any]]:
        return _ReadFrames(self.ctx._serializer())


class BlockRDD(RDD):
    """The blocks a receiver stored during one batch: one partition per block."""

    def __init__(self, ctx: Context, blocks: list[Any], errors: str = "replace") -> None:
        super().__init__(ctx)
        ship = not ctx._executor.shares_driver_files  # spilled blocks travel as bytes
        self._split_list = [
            BlockSplit(i, b.payload, b.codec, b.serializer, errors, getattr(b, "path", None),
                       ship, getattr(b, "offset", 0),
                       getattr(b, "spilled_bytes", 0) if getattr(b, "path", None) else -1)
            for i, b in enumerate(blocks)
        ]

    def _raw_num_partitions(self) -> int:
        return len(self._split_list)

    def _raw_splits(self) -> list[Any]:
        return self._split_list

    def _raw_compute(self) -> Callable[[Any], Iterator[Any]]:
        return decode_block


# --------------------------------------------------------------------------- narrow


class _Pipe:
    """``func(index, prev(split))``: one fused narrow step."""

    def __init__(self, func: Callable[[int, Iterator[Any]], Iterator[Any]],
                 prev: Callable[[Any], Iterator[Any]]) -> None:
        self.func = func
        self.prev = prev

    def __call__(self, split: Any) -> Iterator[Any]:
        return self.func(split.index, self.prev(split))


class _Compose:
    """``outer(index, inner(index, it))``: two narrow steps fused into one function."""

    def __init__(self, outer: Callable, inner: Callable) -> None:
        self.outer = outer
        self.inner = inner

    def __call__(self, index: int, it: Iterator[Any]) -> Iterator[Any]:
        return self.outer(index, self.inner(index, it))


class PipelinedRDD(RDD):
    """A chain of narrow transformations fused into one function per partition.

    ``rdd.map(f).filter(g).flatMap(h)`` is one ``PipelinedRDD`` over ``rdd``, computed in a
    single pass with no intermediate RDD materialized — unless an intermediate step is
    persisted or checkpointed, which ends the chain there.
    """

    _lineage_attrs = ("_prev",)

    def __init__(self, prev: RDD, func: Callable[[int, Iterator[Any]], Iterator[Any]],
                 preservesPartitioning: bool = False) -> None:
        super().__init__(prev.ctx, prev.partitioner if preservesPartitioning else None)
        if isinstance(prev, PipelinedRDD) and prev._is_pipelinable():
            self.func: Callable = _Compose(func, prev.func)
            self._prev: RDD = prev._prev
        else:
            self.func = func
            self._prev = prev

    def _is_pipelinable(self) -> bool:
        return self._level is None and not self._checkpoint_requested and (
            self._checkpoint_splits is None
        )

    def _narrow_parents(self) -> list[RDD]:
        return [self._prev]

    def _raw_num_partitions(self) -> int:
        return self._prev.getNumPartitions()

    def _raw_splits(self) -> list[Any]:
        return self._prev._splits()

    def _raw_compute(self) -> Callable[[Any], Iterator[Any]]:
        return _Pipe(self.func, self._prev._compute())


@attrs.frozen
class _UnionSplit:
    index: int
    branch: int
    inner: Any


class _UnionCompute:
    def __init__(self, computes: list[Callable]) -> None:
        self.computes = computes

    def __call__(self, split: _UnionSplit) -> Iterator[Any]:
        return self.computes[split.branch](split.inner)


class UnionRDD(RDD):
    """The partitions of several RDDs, one after the other."""

    _lineage_attrs = ("_rdds",)

    def __init__(self, ctx: Context, rdds: list[RDD]) -> None:
        parts = {r.partitioner for r in rdds}
        same = len(parts) == 1 and None not in parts and len(rdds) == 1
        super().__init__(ctx, rdds[0].partitioner if same else None)
        self._rdds = list(rdds)

    def _narrow_parents(self) -> list[RDD]:
        return list(self._rdds)

    def _raw_num_partitions(self) -> int:
        return sum(r.getNumPartitions() for r in self._rdds)

    def _raw_splits(self) -> list[Any]:
        out: list[Any] = []
        for b, r in enumerate(self._rdds):
            for s in r._splits():
                out.append(_UnionSplit(len(out), b, s))
        return out

    def _raw_compute(self) -> Callable[[Any], Iterator[Any]]:
        return _UnionCompute([r._compute() for r in self._rdds])


@attrs.frozen
class _GroupSplit:
    index: int
    inners: tuple[Any, ...]


class _GroupCompute:
    def __init__(self, prev: Callable) -> None:
        self.prev = prev

    def __call__(self, split: _GroupSplit) -> Iterator[Any]:
        return itertools.chain.from_iterable(self.prev(s) for s in split.inners)


class CoalescedRDD(RDD):
    """Fewer partitions without a shuffle: each new partition reads adjacent old ones."""

    _lineage_attrs = ("_prev",)

    def __init__(self, prev: RDD, num_partitions: int) -> None:
        super().__init__(prev.ctx)
        self._prev = prev
        n = prev.getNumPartitions()
        k = max(1, min(num_partitions, n)) if n else 0
        self._groups = [list(range(i * n // k, (i + 1) * n // k)) for i in range(k)]

    def _narrow_parents(self) -> list[RDD]:
        return [self._prev]

    def _raw_num_partitions(self) -> int:
        return len(self._groups)

    def _raw_splits(self) -> list[Any]:
        parent = self._prev._splits()
        return [_GroupSplit(i, tuple(parent[j] for j in g)) for i, g in enumerate(self._groups)]

    def _raw_compute(self) -> Callable[[Any], Iterator[Any]]:
        return _GroupCompute(self._prev._compute())


@attrs.frozen
class _ZipSplit:
    index: int
    inners: tuple[Any, ...]


class _ZipCompute:
    def __init__(self, func: Callable[..., Iterator[Any]], computes: list[Callable]) -> None:
        self.func = func
        self.computes = computes

    def __call__(self, split: _ZipSplit) -> Iterator[Any]:
        inputs = [c(s) for c, s in zip(self.computes, split.inners, strict=True)]
        return iter(self.func(split.index, *inputs))


class ZippedPartitionsRDD(RDD):
    """Partition ``i`` is ``func(i, partition i of each RDD)``: a narrow join of RDDs that have
    the same number of partitions (co-partitioned state and new data, for instance).

    A task runs where the first RDD's partition is cached in memory when it can, so state
    kept there is read in place.
    """

    _lineage_attrs = ("_rdds",)

    def __init__(self, rdds: list[RDD], func: Callable[..., Iterator[Any]],
                 preservesPartitioning: bool = True) -> None:
        counts = {r.getNumPartitions() for r in rdds}
        if len(counts) != 1:
            raise ValueError(
                f"zipped RDDs must have the same number of partitions, got {sorted(counts)}"
            )
        super().__init__(rdds[0].ctx, rdds[0].partitioner if preservesPartitioning else None)
        self._rdds = list(rdds)
        self._func = func

    def _narrow_parents(self) -> list[RDD]:
        return list(self._rdds)

    def _raw_num_partitions(self) -> int:
        return self._rdds[0].getNumPartitions()

    def _raw_splits(self) -> list[Any]:
        per = [r._splits() for r in self._rdds]
        return [_ZipSplit(i, tuple(p[i] for p in per)) for i in range(len(per[0]))]

    def _raw_compute(self) -> Callable[[Any], Iterator[Any]]:
        return _ZipCompute(self._func, [r._compute() for r in self._rdds])


# --------------------------------------------------------------------------- shuffle


@attrs.frozen
class ShuffleSplit:
    """A reduce partition: which map outputs to read it from."""

    index: int
    shuffle_id: int
    outputs: tuple[Any, ...]


class _ReadShuffle:
    def __init__(self, spec: ShuffleSpec) -> None:
        self.spec = spec

    def __call__(self, split: ShuffleSplit) -> Iterator[Any]:
        # The spec leaves the shuffle id out (-1) so that the function is the same for every
        # shuffle of one pipeline; the split knows it, and a FetchFailed must name it.
        spec = attrs.evolve(self.spec, shuffle_id=split.shuffle_id)
        outputs = list(split.outputs)
        for map_id, output in enumerate(outputs):
            if output is None:  # forgotten (its worker died) after this task was planned
                raise FetchFailed(split.shuffle_id, map_id, "it was lost before the task ran")
        return read_shuffle(outputs, split.index, spec)


def _remove_outputs(outputs: list[Any]) -> None:
    for o in outputs:
        if o is not None:
            o.remove()


class ShuffledRDD(RDD):
    """Records of ``prev`` regrouped by key with ``partitioner``, optionally combined."""

    _lineage_attrs = ("_prev",)

    def _truncate_lineage(self) -> None:
        super()._truncate_lineage()
        _remove_outputs(self._outputs)
        self._outputs[:] = [None] * len(self._outputs)

    def __init__(self, prev: RDD, partitioner: Partitioner, aggregator: Aggregator | None,
                 map_side_combine: bool = True, count_keys: bool = False) -> None:
        super().__init__(prev.ctx, partitioner)
        self._count_keys = count_keys
        self._prev = prev
        self.shuffle_id = self.ctx._new_shuffle_id(self)
        self._aggregator = aggregator
        self._map_side_combine = map_side_combine and aggregator is not None
        self._outputs: list[Any] = [None] * prev.getNumPartitions()
        weakref.finalize(self, _remove_outputs, self._outputs)

    def _narrow_parents(self) -> list[RDD]:
        return []

    def _missing_map_ids(self) -> list[int]:
        return [i for i, o in enumerate(self._outputs) if o is None]

    def _missing_shuffles(self) -> list[RDD]:
        if self._checkpoint_splits is not None or self._all_cached():
            return []
        return [self] if self._missing_map_ids() else []

    def _register_map_outputs(self, results: dict[int, Any]) -> None:
        for i, status in results.items():
            old = self._outputs[i]
            if old is not None and old is not status:
                old.remove()
            self._outputs[i] = status

    def _forget_map_output(self, map_id: int) -> None:
        self._outputs[map_id] = None

    def _forget_map_outputs_at(self, location: str) -> None:
        for i, o in enumerate(self._outputs):
            if o is not None and getattr(o, "location", None) == location:
                self._outputs[i] = None

    def _spec(self) -> ShuffleSpec:
        executor = self.ctx._executor
        local = not executor.in_process
        store = executor.map_output_store() if local else None
        return ShuffleSpec(
            shuffle_id=-1,
            partitioner=self.partitioner,  # type: ignore[arg-type]
            aggregator=self._aggregator,
            map_side_combine=self._map_side_combine,
            directory=self.ctx._local_dir if local and store is None else None,
            small_directory=self.ctx._memory_dir if local and store is None else None,
            serializer=self.ctx._serializer() if local else None,
            store=store,
            count_keys=self._count_keys,
        )

    def _raw_num_partitions(self) -> int:
        return self.partitioner.numPartitions  # type: ignore[union-attr]

    def _raw_splits(self) -> list[Any]:
        outputs = tuple(self._outputs)
        return [ShuffleSplit(i, self.shuffle_id, outputs) for i in range(self._raw_num_partitions())]

    def _raw_compute(self) -> Callable[[Any], Iterator[Any]]:
        return _ReadShuffle(self._spec())
