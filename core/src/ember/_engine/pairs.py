"""Operations on RDDs of ``(key, value)`` pairs, mixed into :class:`ember.RDD`.

Wide operations shuffle by key with a :class:`HashPartitioner` (``portable_hash`` unless a
``partitionFunc`` is given) and combine values on the map side first. When the data is
already partitioned the way an operation needs, the shuffle is skipped.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ember._engine.partitioning import HashPartitioner, Partitioner, RangePartitioner, portable_hash
from ember._engine.shuffle import Aggregator, combine_by_key

if TYPE_CHECKING:
    from ember.rdd import RDD

__all__ = ["PairFunctions"]

_key = operator.itemgetter(0)
_value = operator.itemgetter(1)


class _MapValues:
    def __init__(self, f: Callable) -> None:
        self.f = f

    def __call__(self, _i: int, it: Iterator[Any]) -> Iterator[Any]:
        f = self.f
        return ((k, f(v)) for k, v in it)


class _FlatMapValues:
    def __init__(self, f: Callable) -> None:
        self.f = f

    def __call__(self, _i: int, it: Iterator[Any]) -> Iterator[Any]:
        f = self.f
        return ((k, x) for k, v in it for x in f(v))


class _CombineLocally:
    def __init__(self, agg: Aggregator) -> None:
        self.agg = agg

    def __call__(self, _i: int, it: Iterator[Any]) -> Iterator[Any]:
        return iter(combine_by_key(it, self.agg).items())


def _append(acc: list, v: Any) -> list:
    acc.append(v)
    return acc


def _extend(a: list, b: list) -> list:
    a.extend(b)
    return a


def _one(v: Any) -> list:
    return [v]


def _counting(rdd: Any, func: Any) -> Any:
    """The RDD of bare keys when ``rdd.reduceByKey(func)`` only counts them, else ``None``.

    That is when ``rdd`` is a fused pipeline whose last step is ``map(lambda x: (x, 1))``
    and ``func`` is addition (see :mod:`ember._engine.idioms`).
    """
    from ember._engine.idioms import is_addition, is_unit_pair
    from ember._engine.rdds import PipelinedRDD, _Compose
    from ember.rdd import _Map

    if not isinstance(rdd, PipelinedRDD) or not rdd._is_pipelinable() or not is_addition(func):
        return None
    step, inner = rdd.func, None
    if isinstance(step, _Compose):
        step, inner = step.outer, step.inner
    if not isinstance(step, _Map) or not is_unit_pair(step.f):
        return None
    if inner is None:
        return rdd._prev
    return PipelinedRDD(rdd._prev, inner)


def _check_fn(f: Any, what: str) -> None:
    if not callable(f):
        raise TypeError(f"{what} expects a function, got {f!r} of type {type(f).__name__}")


class PairFunctions:
    """The key-value operations of PySpark's ``RDD`` (mixed into :class:`ember.RDD`)."""

    def _default_partitions(self: RDD, numPartitions: int | None) -> int:  # type: ignore[misc]
        if numPartitions is None:
            return max(self.getNumPartitions(), 1)
        if isinstance(numPartitions, bool) or not isinstance(numPartitions, int) or numPartitions < 1:
            raise ValueError(f"numPartitions must be an integer >= 1, got {numPartitions!r}")
        return numPartitions

    def keys(self: RDD) -> RDD:  # type: ignore[misc]
        """The keys of the pairs."""
        return self.map(_key)

    def values(self: RDD) -> RDD:  # type: ignore[misc]
        """The values of the pairs."""
        return self.map(_value)

    def mapValues(self: RDD, f: Callable[[Any], Any]) -> RDD:  # type: ignore[misc]
        """Apply ``f`` to each value, keeping keys and partitioning."""
        _check_fn(f, "mapValues")
        return self._pipe(_MapValues(f), True)

    def flatMapValues(self: RDD, f: Callable[[Any], Iterable[Any]]) -> RDD:  # type: ignore[misc]
        """Apply ``f`` to each value and pair every item it returns with the key."""
        _check_fn(f, "flatMapValues")
        return self._pipe(_FlatMapValues(f), True)

    def partitionBy(self: RDD, numPartitions: int | None,  # type: ignore[misc]
                    partitionFunc: Callable[[Any], int] = portable_hash) -> RDD:
        """Regroup the pairs into ``numPartitions`` partitions by ``partitionFunc(key)``."""
        from ember._engine.rdds import ShuffledRDD

        partitioner = HashPartitioner(self._default_partitions(numPartitions), partitionFunc)
        if self.partitioner == partitioner:
            return self
        return ShuffledRDD(self, partitioner, None, False)

    def _shuffle_with(self: RDD, partitioner: Partitioner, agg: Aggregator) -> RDD:  # type: ignore[misc]
        from ember._engine.rdds import ShuffledRDD

        if self.partitioner == partitioner:
            return self._pipe(_CombineLocally(agg), True)
        return ShuffledRDD(self, partitioner, agg, True)

    def combineByKey(self: RDD, createCombiner: Callable[[Any], Any],  # type: ignore[misc]
                     mergeValue: Callable[[Any, Any], Any],
                     mergeCombiners: Callable[[Any, Any], Any],
                     numPartitions: int | None = None,
                     partitionFunc: Callable[[Any], int] = portable_hash) -> RDD:
        """Combine the values of each key: PySpark's generic per-key aggregation.

        ``mergeValue`` and ``mergeCombiners`` may modify and return their first argument.
        """
        for f, what in ((createCombiner, "createCombiner"), (mergeValue, "mergeValue"),
                        (mergeCombiners, "mergeCombiners")):
            _check_fn(f, f"combineByKey's {what}")
        partitioner = HashPartitioner(self._default_partitions(numPartitions), partitionFunc)
        return self._shuffle_with(partitioner, Aggregator(createCombiner, mergeValue, mergeCombiners))

    def reduceByKey(self: RDD, func: Callable[[Any, Any], Any],  # type: ignore[misc]
                    numPartitions: int | None = None,
                    partitionFunc: Callable[[Any], int] = portable_hash) -> RDD:
        """Merge the values of each key with the associative, commutative ``func``.

        >>> from ember import Context
        >>> with Context("inline") as sc:
        ...     sorted(sc.parallelize([("a", 1), ("b", 1), ("a", 1)]).reduceByKey(lambda a, b: a + b).collect())
        [('a', 2), ('b', 1)]
        """
        _check_fn(func, "reduceByKey")
        partitioner = HashPartitioner(self._default_partitions(numPartitions), partitionFunc)
        counted = _counting(self, func) if self.partitioner != partitioner else None
        if counted is not None:
            from ember._engine.rdds import ShuffledRDD

            return ShuffledRDD(counted, partitioner, Aggregator(None, func, func), True,
                               count_keys=True)
        return self._shuffle_with(partitioner, Aggregator(None, func, func))

    def groupByKey(self: RDD, numPartitions: int | None = None,  # type: ignore[misc]
                   partitionFunc: Callable[[Any], int] = portable_hash) -> RDD:
        """Pairs ``(key, [values])``; each list holds the values in no particular order."""
        return self.combineByKey(_one, _append, _extend, numPartitions, partitionFunc)

    def aggregateByKey(self: RDD, zeroValue: Any,  # type: ignore[misc]
                       seqFunc: Callable[[Any, Any], Any],
                       combFunc: Callable[[Any, Any], Any],
                       numPartitions: int | None = None,
                       partitionFunc: Callable[[Any], int] = portable_hash) -> RDD:
        """Aggregate each key's values from a fresh copy of ``zeroValue``."""
        _check_fn(seqFunc, "aggregateByKey")
        return self.combineByKey(
            lambda v: seqFunc(copy.deepcopy(zeroValue), v), seqFunc, combFunc,
            numPartitions, partitionFunc,
        )

    def foldByKey(self: RDD, zeroValue: Any, func: Callable[[Any, Any], Any],  # type: ignore[misc]
                  numPartitions: int | None = None,
                  partitionFunc: Callable[[Any], int] = portable_hash) -> RDD:
        """Fold each key's values with ``func`` from a fresh copy of ``zeroValue``."""
        _check_fn(func, "foldByKey")
        return self.combineByKey(
            lambda v: func(copy.deepcopy(zeroValue), v), func, func, numPartitions, partitionFunc
        )

    # ------------------------------------------------------------------ joins
    def cogroup(self: RDD, other: RDD, numPartitions: int | None = None) -> RDD:  # type: ignore[misc]
        """Pairs ``(key, ([values in self], [values in other]))`` for every key of either."""
        return self.groupWith(other, numPartitions=numPartitions)

    def groupWith(self: RDD, *others: RDD, numPartitions: int | None = None) -> RDD:  # type: ignore[misc]
        """:meth:`cogroup` with any number of RDDs: ``(key, (list, list, ...))``."""
        rdds = [self, *others]
        n = len(rdds)
        if numPartitions is None:
            numPartitions = max(r.getNumPartitions() for r in rdds)
        tagged = [
            r.map(lambda kv, i=i: (kv[0], (i, kv[1])), preservesPartitioning=True)
            for i, r in enumerate(rdds)
        ]
        union = tagged[0].ctx.union(tagged)

        def create(tv: tuple[int, Any]) -> tuple[list, ...]:
            lists: tuple[list, ...] = tuple([] for _ in range(n))
            lists[tv[0]].append(tv[1])
            return lists

        def merge_value(acc: tuple[list, ...], tv: tuple[int, Any]) -> tuple[list, ...]:
            acc[tv[0]].append(tv[1])
            return acc

        def merge(a: tuple[list, ...], b: tuple[list, ...]) -> tuple[list, ...]:
            for x, y in zip(a, b, strict=True):
                x.extend(y)
            return a

        return union.combineByKey(create, merge_value, merge, numPartitions)

    def join(self: RDD, other: RDD, numPartitions: int | None = None) -> RDD:  # type: ignore[misc]
        """Pairs ``(k, (v, w))`` for every ``(k, v)`` in self and ``(k, w)`` in other."""
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for v in vw[0] for w in vw[1]]
        )

    def leftOuterJoin(self: RDD, other: RDD, numPartitions: int | None = None) -> RDD:  # type: ignore[misc]
        """Like :meth:`join`, plus ``(k, (v, None))`` for keys missing in other."""
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for v in vw[0] for w in (vw[1] or [None])]
        )

    def rightOuterJoin(self: RDD, other: RDD, numPartitions: int | None = None) -> RDD:  # type: ignore[misc]
        """Like :meth:`join`, plus ``(k, (None, w))`` for keys missing in self."""
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for v in (vw[0] or [None]) for w in vw[1]]
        )

    def fullOuterJoin(self: RDD, other: RDD, numPartitions: int | None = None) -> RDD:  # type: ignore[misc]
        """Every key of either side, ``None`` standing for the missing side."""
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for v in (vw[0] or [None]) for w in (vw[1] or [None])]
        )

    def subtractByKey(self: RDD, other: RDD, numPartitions: int | None = None) -> RDD:  # type: ignore[misc]
        """The pairs of self whose key is not in other."""
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: vw[0] if not vw[1] else []
        )

    # ------------------------------------------------------------------ sorting
    def sortByKey(self: RDD, ascending: bool = True,  # type: ignore[misc]
                  numPartitions: int | None = None,
                  keyfunc: Callable[[Any], Any] = lambda x: x) -> RDD:
        """Sorted by key: partition ``i`` holds smaller keys than partition ``i + 1``."""
        n = self._default_partitions(numPartitions)

        def sort_part(it: Iterator[Any]) -> list:
            return sorted(it, key=lambda kv: keyfunc(kv[0]), reverse=not ascending)

        if n == 1:
            return self.coalesce(1).mapPartitions(sort_part, True) if self.getNumPartitions() > 1 \
                else self.mapPartitions(sort_part, True)
        sample_size = 20 * n
        counts = self.ctx._run_job(self, lambda _i, it: sum(1 for _ in it), None, "sortByKey")
        total = sum(counts)
        if total == 0:
            return self
        fraction = min(1.0, 3.0 * sample_size / total)
        keys = sorted(self.sample(False, fraction, 7).map(lambda kv: keyfunc(kv[0])).collect())
        if not keys:
            keys = sorted(self.map(lambda kv: keyfunc(kv[0])).collect())
        bounds = [keys[min(len(keys) - 1, (len(keys) * (i + 1)) // n)] for i in range(n - 1)]
        from ember._engine.rdds import ShuffledRDD

        partitioner = RangePartitioner(bounds, ascending, keyfunc)
        return ShuffledRDD(self, partitioner, None, False).mapPartitions(sort_part, True)

    # ------------------------------------------------------------------ actions
    def countByKey(self: RDD) -> dict[Any, int]:  # type: ignore[misc]
        """``{key: number of pairs with it}``."""
        return self.map(_key).countByValue()

    def collectAsMap(self: RDD) -> dict[Any, Any]:  # type: ignore[misc]
        """The pairs as a dict (a later pair wins for a repeated key)."""
        return dict(self.collect())

    def lookup(self: RDD, key: Any) -> list[Any]:  # type: ignore[misc]
        """The values of ``key``."""
        return self.filter(lambda kv: kv[0] == key).values().collect()
