"""The RDD: a lazy, partitioned collection computed by the workers.

Transformations (``map``, ``filter``, ``reduceByKey`` ...) build lineage and compute
nothing; actions (``collect``, ``count`` ...) run a job. Narrow transformations are fused
into one pass per partition; wide ones go through a hash shuffle with map-side combine.
Semantics, names and results follow PySpark's ``RDD``.
"""

from __future__ import annotations

import copy
import functools
import heapq
import itertools
import operator
import os
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ember._engine.pairs import PairFunctions
from ember._engine.storage import CachedSplit, CachingCompute, CheckpointSplit, read_checkpoint
from ember.storagelevel import StorageLevel

if TYPE_CHECKING:
    from ember.context import Context

__all__ = ["RDD"]


def _check_callable(f: Any, what: str) -> None:
    if not callable(f):
        raise TypeError(
            f"{what} expects a function, got {f!r} of type {type(f).__name__}; "
            f"pass a callable such as a lambda or a def"
        )


def _check_partitions(n: Any, what: str = "numPartitions") -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {n!r}")


class _Map:
    def __init__(self, f: Callable) -> None:
        self.f = f

    def __call__(self, _i: int, it: Iterator[Any]) -> Iterator[Any]:
        return map(self.f, it)


class _FlatMap:
    def __init__(self, f: Callable) -> None:
        self.f = f

    def __call__(self, _i: int, it: Iterator[Any]) -> Iterator[Any]:
        return itertools.chain.from_iterable(map(self.f, it))


class _Filter:
    def __init__(self, f: Callable) -> None:
        self.f = f

    def __call__(self, _i: int, it: Iterator[Any]) -> Iterator[Any]:
        return filter(self.f, it)


class _MapPartitions:
    def __init__(self, f: Callable) -> None:
        self.f = f

    def __call__(self, _i: int, it: Iterator[Any]) -> Iterator[Any]:
        return iter(self.f(it))


class _MapPartitionsWithIndex:
    def __init__(self, f: Callable) -> None:
        self.f = f

    def __call__(self, i: int, it: Iterator[Any]) -> Iterator[Any]:
        return iter(self.f(i, it))


def _count(_i: int, it: Iterator[Any]) -> int:
    if isinstance(it, (list, tuple)):
        return len(it)
    n = 0
    for _ in it:
        n += 1
    return n


def _to_list(_i: int, it: Iterator[Any]) -> list:
    return list(it)


class RDD(PairFunctions):
    """A resilient distributed dataset: PySpark's ``RDD`` API over ember's engine.

    Build one with :meth:`ember.Context.parallelize` or :meth:`ember.Context.textFile`.

    >>> from ember import Context
    >>> with Context("inline") as sc:
    ...     sc.parallelize(range(1, 5), 2).glom().collect()
    [[1, 2], [3, 4]]
    """

    def __init__(self, ctx: Context, partitioner: Any = None) -> None:
        self.ctx = ctx
        self.id = ctx._new_rdd_id()
        self.partitioner = partitioner
        self._level: StorageLevel | None = None
        self._checkpoint_requested = False
        self._checkpoint_splits: list[CheckpointSplit] | None = None
        self._name: str | None = None

    # ------------------------------------------------------------------ engine interface
    def _raw_num_partitions(self) -> int:
        raise NotImplementedError

    def _raw_splits(self) -> list[Any]:
        raise NotImplementedError

    def _raw_compute(self) -> Callable[[Any], Iterator[Any]]:
        raise NotImplementedError

    def _narrow_parents(self) -> list[RDD]:
        return []

    #: The attributes holding this RDD's parents, released once it is checkpointed.
    _lineage_attrs: tuple[str, ...] = ()

    def _truncate_lineage(self) -> None:
        """Forget the parents (after a checkpoint), so old lineage can be garbage collected."""
        for name in self._lineage_attrs:
            setattr(self, name, [] if isinstance(getattr(self, name, None), list) else None)

    def _block_prefix(self) -> str:
        # The context's uid keeps ids unique across contexts: worker processes (and the
        # driver, for ``inline``) outlive a context, and RDD ids restart at 0 in each.
        return f"rdd_{self.ctx._uid}_{self.id}_"

    def _block_id(self, index: int) -> str:
        return f"{self._block_prefix()}{index}"

    def _all_cached(self) -> bool:
        if self._level is None:
            return False
        has = self.ctx._blocks.has
        return all(has(self._block_id(i)) for i in range(self.getNumPartitions()))

    def _missing_shuffles(self) -> list[RDD]:
        if self._checkpoint_splits is not None or self._all_cached():
            return []
        seen: dict[int, RDD] = {}
        for parent in self._narrow_parents():
            for s in parent._missing_shuffles():
                seen.setdefault(id(s), s)
        return list(seen.values())

    def _splits(self) -> list[Any]:
        # A checkpointed RDD that is also cached reads its cached blocks first, its files
        # only for a block that is gone (as Spark does).
        if self._checkpoint_splits is not None:
            splits = self._checkpoint_splits
        else:
            splits = self._raw_splits()
        if self._level is not None:
            return [CachedSplit(s.index, self._block_id(s.index), s) for s in splits]
        return splits

    def _compute(self) -> Callable[[Any], Iterator[Any]]:
        if self._checkpoint_splits is not None:
            fn = read_checkpoint(self.ctx._serializer())
        else:
            fn = self._raw_compute()
        if self._level is not None:
            memory_dir, disk_dir = self.ctx._block_dirs()
            fn = CachingCompute(fn, self._level, memory_dir, disk_dir,
                                self.ctx._serializer_or_none())
        return fn

    def _run(self, func: Callable[[int, Iterator[Any]], Any], action: str,
             partitions: list[int] | None = None) -> list[Any]:
        return self.ctx._run_job(self, func, partitions, action)

    # ------------------------------------------------------------------ basics
    @property
    def context(self) -> Context:
        """The :class:`~ember.Context` this RDD belongs to."""
        return self.ctx

    def getNumPartitions(self) -> int:
        """The number of partitions."""
        if self._checkpoint_splits is not None:
            return len(self._checkpoint_splits)
        return self._raw_num_partitions()

    def name(self) -> str | None:
        """The name given with :meth:`setName`."""
        return self._name

    def setName(self, name: str) -> RDD:
        """Name this RDD (shown in ``toDebugString`` and stage names)."""
        self._name = name
        return self

    def __reduce__(self):
        raise TypeError(
            f"{self!r} cannot be pickled: RDDs can only be used on the driver. An RDD was "
            f"captured by a function that runs on the workers (an RDD used inside "
            f"rdd.map(...) for example) or saved in a streaming checkpoint; use a broadcast "
            f"variable, or join the RDDs instead"
        )

    def __repr__(self) -> str:
        label = self._name or type(self).__name__
        return f"{label}[{self.id}]"

    def toDebugString(self) -> bytes:
        """The lineage, one RDD a line, indented under its children (as bytes, like PySpark)."""
        lines: list[str] = []

        def walk(r: RDD, depth: int) -> None:
            extra = f" [{r._level}]" if r._level is not None else ""
            lines.append(f"{'  ' * depth}({r.getNumPartitions()}) {r!r}{extra}")
            if r._checkpoint_splits is not None:
                return
            parents = r._narrow_parents() or ([r._prev] if hasattr(r, "shuffle_id") else [])
            for p in parents:
                walk(p, depth + 1)

        walk(self, 0)
        return "\n".join(lines).encode()

    # ------------------------------------------------------------------ narrow transformations
    def mapPartitionsWithIndex(self, f: Callable[[int, Iterator[Any]], Iterable[Any]],
                               preservesPartitioning: bool = False) -> RDD:
        """Apply ``f(index, iterator)`` to each partition."""
        _check_callable(f, "mapPartitionsWithIndex")
        from ember._engine.rdds import PipelinedRDD

        return PipelinedRDD(self, _MapPartitionsWithIndex(f), preservesPartitioning)

    def _pipe(self, step: Callable, preservesPartitioning: bool = False) -> RDD:
        from ember._engine.rdds import PipelinedRDD

        return PipelinedRDD(self, step, preservesPartitioning)

    def mapPartitions(self, f: Callable[[Iterator[Any]], Iterable[Any]],
                      preservesPartitioning: bool = False) -> RDD:
        """Apply ``f(iterator)`` to each partition."""
        _check_callable(f, "mapPartitions")
        return self._pipe(_MapPartitions(f), preservesPartitioning)

    def map(self, f: Callable[[Any], Any], preservesPartitioning: bool = False) -> RDD:
        """Apply ``f`` to every element.

        >>> from ember import Context
        >>> with Context("inline") as sc:
        ...     sc.parallelize([1, 2, 3]).map(lambda x: x * 10).collect()
        [10, 20, 30]
        """
        _check_callable(f, "map")
        return self._pipe(_Map(f), preservesPartitioning)

    def flatMap(self, f: Callable[[Any], Iterable[Any]],
                preservesPartitioning: bool = False) -> RDD:
        """Apply ``f`` to every element and flatten the iterables it returns."""
        _check_callable(f, "flatMap")
        return self._pipe(_FlatMap(f), preservesPartitioning)

    def filter(self, f: Callable[[Any], bool]) -> RDD:
        """Keep the elements for which ``f`` is true."""
        _check_callable(f, "filter")
        return self._pipe(_Filter(f), True)

    def glom(self) -> RDD:
        """One list per partition."""
        return self.mapPartitions(lambda it: [list(it)])

    def keyBy(self, f: Callable[[Any], Any]) -> RDD:
        """Pairs ``(f(x), x)``."""
        _check_callable(f, "keyBy")
        return self.map(lambda x: (f(x), x))

    def union(self, other: RDD) -> RDD:
        """The elements of both RDDs (duplicates kept), partitions of ``self`` first."""
        from ember._engine.rdds import UnionRDD

        return UnionRDD(self.ctx, [self, other])

    def __add__(self, other: RDD) -> RDD:
        if not isinstance(other, RDD):
            raise TypeError(f"can only add an RDD to an RDD, got {type(other).__name__}")
        return self.union(other)

    def coalesce(self, numPartitions: int, shuffle: bool = False) -> RDD:
        """Fewer partitions: merge adjacent ones without a shuffle (or with, if asked)."""
        _check_partitions(numPartitions)
        if shuffle:
            return self.repartition(numPartitions)
        from ember._engine.rdds import CoalescedRDD

        return CoalescedRDD(self, numPartitions)

    def repartition(self, numPartitions: int) -> RDD:
        """Exactly ``numPartitions`` partitions of about equal size, through a shuffle."""
        _check_partitions(numPartitions)

        def spread(i: int, it: Iterator[Any]) -> Iterator[Any]:
            return ((i + n, x) for n, x in enumerate(it))

        return (
            self.mapPartitionsWithIndex(spread)
            .partitionBy(numPartitions, lambda k: k)
            .values()
        )

    def distinct(self, numPartitions: int | None = None) -> RDD:
        """The distinct elements."""
        return (
            self.map(lambda x: (x, None))
            .reduceByKey(lambda a, _b: a, numPartitions)
            .map(operator.itemgetter(0))
        )

    def sample(self, withReplacement: bool, fraction: float, seed: int | None = None) -> RDD:
        """A random sample: each element kept with probability ``fraction`` (or drawn Poisson)."""
        if fraction < 0:
            raise ValueError(f"fraction must be >= 0, got {fraction!r}")
        base = random.randrange(1 << 30) if seed is None else seed

        def pick(i: int, it: Iterator[Any]) -> Iterator[Any]:
            rng = random.Random(base * 1000003 + i)
            if not withReplacement:
                return (x for x in it if rng.random() < fraction)
            return (x for x in it for _ in range(_poisson(rng, fraction)))

        return self.mapPartitionsWithIndex(pick, True)

    def zipWithIndex(self) -> RDD:
        """Pairs ``(element, index)``, indices in partition order."""
        counts = self._run(_count, "zipWithIndex")
        starts = list(itertools.accumulate([0, *counts[:-1]]))
        return self.mapPartitionsWithIndex(
            lambda i, it: ((x, starts[i] + n) for n, x in enumerate(it))
        )

    def sortBy(self, keyfunc: Callable[[Any], Any], ascending: bool = True,
               numPartitions: int | None = None) -> RDD:
        """Sorted by ``keyfunc(element)``."""
        _check_callable(keyfunc, "sortBy")
        return self.keyBy(keyfunc).sortByKey(ascending, numPartitions).values()

    # ------------------------------------------------------------------ persistence
    def persist(self, storageLevel: StorageLevel = StorageLevel.MEMORY_ONLY) -> RDD:
        """Keep the partitions once computed, at ``storageLevel``."""
        if not isinstance(storageLevel, StorageLevel):
            raise TypeError(f"persist expects a StorageLevel, got {storageLevel!r}")
        if self._level is not None and self._level != storageLevel:
            raise ValueError(
                f"cannot change the storage level of {self!r} from {self._level} to "
                f"{storageLevel}; unpersist() it first"
            )
        self._level = storageLevel
        return self

    def cache(self) -> RDD:
        """``persist(StorageLevel.MEMORY_ONLY)``."""
        return self.persist(StorageLevel.MEMORY_ONLY)

    def unpersist(self, blocking: bool = False) -> RDD:
        """Drop the cached partitions and stop caching."""
        if self._level is not None:
            self.ctx._drop_blocks(self._block_prefix())
            self._level = None
        return self

    @property
    def is_cached(self) -> bool:
        """Whether this RDD is persisted."""
        return self._level is not None

    def getStorageLevel(self) -> StorageLevel:
        """The storage level (``StorageLevel.NONE`` when not persisted)."""
        return self._level or StorageLevel.NONE

    def checkpoint(self) -> None:
        """Save this RDD to the checkpoint directory after the next job that computes it.

        Its lineage is then cut: later jobs read the saved files. Persist it too, or it is
        computed twice (once for the job, once to save it).
        """
        if self.ctx._checkpoint_dir is None:
            raise ValueError(
                "checkpoint directory is not set: call sc.setCheckpointDir(path) first"
            )
        self._checkpoint_requested = True

    def isCheckpointed(self) -> bool:
        """Whether the RDD has been saved by :meth:`checkpoint`."""
        return self._checkpoint_splits is not None

    def getCheckpointFile(self) -> str | None:
        """The directory the RDD was checkpointed to, if it was."""
        if self._checkpoint_splits is None:
            return None
        return os.path.dirname(self._checkpoint_splits[0].path) if self._checkpoint_splits else None

    # ------------------------------------------------------------------ actions
    def collect(self) -> list[Any]:
        """All elements, in partition order."""
        return [x for part in self._run(_to_list, "collect") for x in part]

    def count(self) -> int:
        """The number of elements."""
        return sum(self._run(_count, "count"))

    def take(self, num: int) -> list[Any]:
        """The first ``num`` elements, scanning as few partitions as it can."""
        if num <= 0:
            return []
        out: list[Any] = []
        total = self.getNumPartitions()
        done = 0
        step = 1
        while len(out) < num and done < total:
            parts = list(range(done, min(done + step, total)))
            need = num - len(out)
            for chunk in self._run(lambda _i, it, need=need: list(itertools.islice(it, need)),
                                   "take", parts):
                out.extend(chunk)
            done += len(parts)
            step *= 4
        return out[:num]

    def first(self) -> Any:
        """The first element; ``ValueError`` when the RDD is empty."""
        got = self.take(1)
        if not got:
            raise ValueError("RDD is empty")
        return got[0]

    def isEmpty(self) -> bool:
        """Whether the RDD has no element."""
        return self.getNumPartitions() == 0 or not self.take(1)

    def reduce(self, f: Callable[[Any, Any], Any]) -> Any:
        """Combine all elements with the associative, commutative ``f``."""
        _check_callable(f, "reduce")

        def part(_i: int, it: Iterator[Any]) -> list[Any]:
            # [] for an empty partition (no sentinel object: it would not survive pickling)
            it = iter(it)
            for first in it:
                return [functools.reduce(f, it, first)]
            return []

        vals = [v for part_vals in self._run(part, "reduce") for v in part_vals]
        if not vals:
            raise ValueError("Can not reduce() empty RDD")
        return functools.reduce(f, vals)

    def fold(self, zeroValue: Any, op: Callable[[Any, Any], Any]) -> Any:
        """Fold each partition, then the results, starting from ``zeroValue`` each time."""
        _check_callable(op, "fold")
        vals = self._run(
            lambda _i, it: functools.reduce(op, it, copy.deepcopy(zeroValue)), "fold"
        )
        return functools.reduce(op, vals, copy.deepcopy(zeroValue))

    def aggregate(self, zeroValue: Any, seqOp: Callable[[Any, Any], Any],
                  combOp: Callable[[Any, Any], Any]) -> Any:
        """Aggregate each partition with ``seqOp``, then the results with ``combOp``."""
        _check_callable(seqOp, "aggregate")
        _check_callable(combOp, "aggregate")
        vals = self._run(
            lambda _i, it: functools.reduce(seqOp, it, copy.deepcopy(zeroValue)), "aggregate"
        )
        return functools.reduce(combOp, vals, copy.deepcopy(zeroValue))

    def sum(self) -> Any:
        """The sum of the elements."""
        return sum(self._run(lambda _i, it: sum(it), "sum"))

    def max(self, key: Callable[[Any], Any] | None = None) -> Any:
        """The largest element (by ``key``)."""
        return self.reduce(lambda a, b: max(a, b, key=key) if key else max(a, b))

    def min(self, key: Callable[[Any], Any] | None = None) -> Any:
        """The smallest element (by ``key``)."""
        return self.reduce(lambda a, b: min(a, b, key=key) if key else min(a, b))

    def mean(self) -> float:
        """The mean of the elements."""
        pairs = self._run(lambda _i, it: _sum_count(it), "mean")
        total = sum(p[0] for p in pairs)
        n = sum(p[1] for p in pairs)
        if n == 0:
            raise ValueError("mean() of an empty RDD")
        return total / n

    def top(self, num: int, key: Callable[[Any], Any] | None = None) -> list[Any]:
        """The ``num`` largest elements, largest first."""
        parts = self._run(lambda _i, it: heapq.nlargest(num, it, key=key), "top")
        return heapq.nlargest(num, itertools.chain.from_iterable(parts), key=key)

    def takeOrdered(self, num: int, key: Callable[[Any], Any] | None = None) -> list[Any]:
        """The ``num`` smallest elements, smallest first."""
        parts = self._run(lambda _i, it: heapq.nsmallest(num, it, key=key), "takeOrdered")
        return heapq.nsmallest(num, itertools.chain.from_iterable(parts), key=key)

    def countByValue(self) -> dict[Any, int]:
        """``{element: count}``."""
        def part(_i: int, it: Iterator[Any]) -> dict:
            return dict(Counter(it))  # counts in C

        total: dict[Any, int] = defaultdict(int)
        for d in self._run(part, "countByValue"):
            for k, v in d.items():
                total[k] += v
        return total

    def foreach(self, f: Callable[[Any], None]) -> None:
        """Call ``f`` on every element, in the workers."""
        _check_callable(f, "foreach")

        def part(_i: int, it: Iterator[Any]) -> None:
            for x in it:
                f(x)

        self._run(part, "foreach")

    def foreachPartition(self, f: Callable[[Iterator[Any]], None]) -> None:
        """Call ``f`` on each partition's iterator, in the workers."""
        _check_callable(f, "foreachPartition")

        def part(_i: int, it: Iterator[Any]) -> None:
            f(it)

        self._run(part, "foreachPartition")

    def saveAsTextFile(self, path: str, compressionCodecClass: str | None = None) -> None:
        """Write one ``part-NNNNN`` text file per partition into the new directory ``path``.

        The directory appears complete (with ``_SUCCESS``) or not at all: the files are
        written into a temporary directory beside it that is renamed when all are done.
        """
        self.ctx._save_partitions(self, path, "text", compressionCodecClass is not None)

    def saveAsPickleFile(self, path: str, batchSize: int = 10) -> None:
        """Write the elements with the configured serializer; read back with ``pickleFile``."""
        self.ctx._save_partitions(self, path, "pickle", False)


def _sum_count(it: Iterator[Any]) -> tuple[Any, int]:
    total = 0
    n = 0
    for x in it:
        total += x
        n += 1
    return total, n


def _poisson(rng: random.Random, lam: float) -> int:
    threshold = pow(2.718281828459045, -lam)
    k = 0
    p = rng.random()
    while p > threshold:
        k += 1
        p *= rng.random()
    return k
