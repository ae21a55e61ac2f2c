"""The DStream: a continuous series of RDDs, one per batch interval.

Every operation on a DStream becomes the same operation on each batch's RDD. Transformations
run when a batch is generated (on the driver, at the batch time); output operations run as
the batch's jobs, one per operation, in the order they were defined. Names, arguments and
results follow PySpark's ``pyspark.streaming.DStream``.
"""

from __future__ import annotations

import datetime
import math
import operator
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ember._callsite import callsite
from ember._engine.partitioning import portable_hash
from ember.rdd import RDD
from ember.storagelevel import StorageLevel

if TYPE_CHECKING:
    from ember.context import Context
    from ember.streaming.context import StreamingContext

__all__ = ["DStream"]


def _to_ms(value: Any, what: str) -> int:
    """Seconds (a number) or a ``datetime`` as integer milliseconds."""
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be seconds (a number) or a datetime, got {value!r}")
    return round(value * 1000)


def duration_ms(seconds: Any, what: str) -> int:
    """A positive duration in seconds as milliseconds, with a clear error otherwise."""
    if (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds) or seconds <= 0):
        raise ValueError(f"{what} must be a positive number of seconds, got {seconds!r}")
    ms = round(seconds * 1000)
    if ms < 1:
        raise ValueError(f"{what} must be at least 1 ms, got {seconds!r} s")
    return ms


def _check_fn(f: Any, what: str) -> None:
    if not callable(f):
        raise TypeError(f"{what} expects a function, got {f!r} of type {type(f).__name__}")


def _time_rdd_function(func: Callable[..., Any], what: str) -> Callable[[Any, RDD], Any]:
    from ember._sinks.foreach import time_and_rdd_function

    return time_and_rdd_function(func, what)


class DStream:
    """A discretized stream: PySpark's ``DStream`` API over ember's engine.

    Make one from a :class:`~ember.streaming.StreamingContext` (``queueStream``,
    ``socketTextStream``, ``stream(...)``) and transform it.
    """

    def __init__(self, ssc: StreamingContext, parents: list[DStream], slide_ms: int) -> None:
        ssc._check_can_add("create a new DStream")
        self._ssc = ssc
        self._parents = list(parents)
        self._slide_ms = slide_ms
        self._generated: dict[int, RDD] = {}
        self._remember_ms: int = 0
        self._zero_ms: int | None = None
        self._level: StorageLevel | None = None
        self._checkpoint_ms: int | None = None
        self._lock = threading.RLock()
        self.id = ssc._graph.new_stream_id()

    # ------------------------------------------------------------------ engine interface
    def _compute(self, time_ms: int) -> RDD | None:
        raise NotImplementedError

    def _is_time_valid(self, time_ms: int) -> bool:
        zero = self._zero_ms
        return zero is not None and time_ms > zero and (time_ms - zero) % self._slide_ms == 0

    def _get_or_compute(self, time_ms: int) -> RDD | None:
        """The RDD of batch ``time_ms``: generated once, remembered for later users."""
        with self._lock:
            rdd = self._generated.get(time_ms)
            if rdd is not None or not self._is_time_valid(time_ms):
                return rdd
            rdd = self._compute(time_ms)
            if rdd is not None:
                if self._level is not None:
                    rdd.persist(self._level)
                if self._checkpoint_ms and (time_ms - self._zero_ms) % self._checkpoint_ms == 0:  # type: ignore[operator]
                    rdd.checkpoint()
                self._generated[time_ms] = rdd
            return rdd

    def _initialize(self, zero_ms: int) -> None:
        if self._zero_ms is not None:
            return
        self._zero_ms = zero_ms
        for parent in self._parents:
            parent._initialize(zero_ms)

    def _parent_remember_ms(self) -> int:
        """How far back this stream needs its parents' RDDs at a batch (windows need more)."""
        return self._remember_ms

    def _remember(self, ms: int) -> None:
        self._remember_ms = max(self._remember_ms, ms, self._slide_ms)
        if self._checkpoint_ms:  # recovery recomputes from the last saved RDD onwards
            self._remember_ms = max(self._remember_ms, 2 * self._checkpoint_ms)
        for parent in self._parents:
            parent._remember(self._parent_remember_ms())

    #: True for streams that cannot run without a checkpoint directory (stateful ones).
    _must_checkpoint = False

    def _validate_at_start(self) -> None:
        if self._must_checkpoint and self._ssc._checkpoint_dir is None:
            raise ValueError(
                f"{self!r} keeps state across batches (updateStateByKey, mapWithState or "
                f"reduceByKeyAndWindow with an inverse function) and needs a checkpoint "
                f"directory: call ssc.checkpoint(directory) before start()"
            )
        if self._checkpoint_ms is not None and self._ssc._checkpoint_dir is None:
            raise ValueError(
                f"{self!r} asks for checkpoints every {self._checkpoint_ms / 1000} s but no "
                f"checkpoint directory is set; call ssc.checkpoint(directory) before start()"
            )
        for parent in self._parents:
            parent._validate_at_start()

    def _clear_metadata(self, time_ms: int) -> None:
        """Forget (and unpersist) the RDDs older than the remember duration."""
        with self._lock:
            old = [t for t in self._generated if t <= time_ms - self._remember_ms]
            for t in old:
                rdd = self._generated.pop(t)
                if rdd.is_cached:
                    rdd.unpersist()
        for parent in self._parents:
            parent._clear_metadata(time_ms)

    def __repr__(self) -> str:
        return f"{type(self).__name__}[{self.id}]"

    # ------------------------------------------------------------------ checkpoints
    def __getstate__(self) -> dict[str, Any]:
        """What a metadata checkpoint keeps: the stream's definition and, of its RDDs, only
        those saved to the checkpoint directory (as file lists)."""
        with self._lock:  # the generator thread adds RDDs while a job thread checkpoints
            state = self.__dict__.copy()
            generated = dict(state.pop("_generated", {}))
        state.pop("_ssc", None)
        state.pop("_lock", None)
        state["_saved_rdds"] = {
            t: ([s.path for s in splits], rdd.partitioner)
            for t, rdd in generated.items()
            if (splits := rdd._checkpoint_splits) is not None
        }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._generated = {}

    def _rebind(self, ssc: StreamingContext) -> None:
        """Attach a stream loaded from a checkpoint to its new context."""
        if getattr(self, "_ssc", None) is ssc:
            return
        self._ssc = ssc
        for t, (paths, partitioner) in self.__dict__.pop("_saved_rdds", {}).items():
            self._generated[t] = ssc.sparkContext._checkpoint_file_rdd(paths, partitioner)
        for parent in self._parents:
            parent._rebind(ssc)

    def _saved_dirs(self) -> set[str]:
        import os

        dirs = set()
        with self._lock:
            for rdd in self._generated.values():
                if rdd._checkpoint_splits:
                    dirs.add(os.path.dirname(rdd._checkpoint_splits[0].path))
        for parent in self._parents:
            dirs |= parent._saved_dirs()
        return dirs

    # ------------------------------------------------------------------ basics
    def context(self) -> StreamingContext:
        """The :class:`~ember.streaming.StreamingContext` of this DStream."""
        return self._ssc

    @property
    def _sc(self) -> Context:
        return self._ssc.sparkContext

    def slideDuration(self) -> float:
        """Seconds between two RDDs of this stream."""
        return self._slide_ms / 1000.0

    def _transform(self, func: Callable[[RDD], RDD], what: str) -> DStream:
        from ember.streaming._dstreams import TransformedDStream

        return TransformedDStream([self], lambda _t, rdds: func(rdds[0]), what)

    # ------------------------------------------------------------------ transformations
    def transform(self, func: Callable[..., RDD]) -> DStream:
        """A stream whose RDDs are ``func(rdd)`` or ``func(time, rdd)`` of this stream's RDDs.

        ``time`` is the batch time as a ``datetime``. The function runs on the driver at every
        batch, so it may use any RDD operation (and change what it does from batch to batch).
        """
        from ember.streaming._dstreams import TransformedDStream

        f = _time_rdd_function(func, "transform")
        return TransformedDStream(
            [self],
            lambda t, rdds: f(datetime.datetime.fromtimestamp(t / 1000.0), rdds[0]),
            "transform",
        )

    def transformWith(self, func: Callable[..., RDD], other: DStream,
                      keepSerializer: bool = False) -> DStream:
        """A stream of ``func(rdd_a, rdd_b)`` (or ``func(time, rdd_a, rdd_b)``) of two streams."""
        from ember.streaming._dstreams import TransformedDStream

        _check_fn(func, "transformWith")
        import inspect

        try:
            nargs = len([p for p in inspect.signature(func).parameters.values()
                         if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                                 p.POSITIONAL_OR_KEYWORD)])
        except (TypeError, ValueError):
            nargs = 2
        if nargs not in (2, 3):
            raise TypeError(
                f"transformWith expects a function of (rdd_a, rdd_b) or (time, rdd_a, rdd_b); "
                f"{func!r} takes {nargs} arguments"
            )
        if nargs == 2:
            return TransformedDStream([self, other], lambda _t, r: func(r[0], r[1]),
                                      "transformWith")
        return TransformedDStream(
            [self, other],
            lambda t, r: func(datetime.datetime.fromtimestamp(t / 1000.0), r[0], r[1]),
            "transformWith",
        )

    def map(self, f: Callable[[Any], Any], preservesPartitioning: bool = False) -> DStream:
        """Apply ``f`` to every element."""
        _check_fn(f, "map")
        return self._transform(lambda rdd: rdd.map(f, preservesPartitioning), "map")

    def flatMap(self, f: Callable[[Any], Iterable[Any]],
                preservesPartitioning: bool = False) -> DStream:
        """Apply ``f`` to every element and flatten the results."""
        _check_fn(f, "flatMap")
        return self._transform(lambda rdd: rdd.flatMap(f, preservesPartitioning), "flatMap")

    def filter(self, f: Callable[[Any], bool]) -> DStream:
        """Keep the elements for which ``f`` is true."""
        _check_fn(f, "filter")
        return self._transform(lambda rdd: rdd.filter(f), "filter")

    def mapPartitions(self, f: Callable[[Iterator[Any]], Iterable[Any]],
                      preservesPartitioning: bool = False) -> DStream:
        """Apply ``f`` to each partition's iterator."""
        _check_fn(f, "mapPartitions")
        return self._transform(lambda rdd: rdd.mapPartitions(f, preservesPartitioning),
                               "mapPartitions")

    def mapPartitionsWithIndex(self, f: Callable[[int, Iterator[Any]], Iterable[Any]],
                               preservesPartitioning: bool = False) -> DStream:
        """Apply ``f(index, iterator)`` to each partition."""
        _check_fn(f, "mapPartitionsWithIndex")
        return self._transform(
            lambda rdd: rdd.mapPartitionsWithIndex(f, preservesPartitioning),
            "mapPartitionsWithIndex",
        )

    def glom(self) -> DStream:
        """One list per partition of each batch."""
        return self._transform(lambda rdd: rdd.glom(), "glom")

    def repartition(self, numPartitions: int) -> DStream:
        """Each batch reshuffled into ``numPartitions`` partitions."""
        return self._transform(lambda rdd: rdd.repartition(numPartitions), "repartition")

    def union(self, other: DStream) -> DStream:
        """The elements of both streams, batch by batch (same slide duration required)."""
        if not isinstance(other, DStream):
            raise TypeError(f"union expects a DStream, got {type(other).__name__}")
        if other._slide_ms != self._slide_ms:
            raise ValueError(
                f"the two DStreams should have the same slide duration, got "
                f"{self.slideDuration()} s and {other.slideDuration()} s"
            )
        return self.transformWith(lambda a, b: a.union(b), other)

    def count(self) -> DStream:
        """A stream of one-element RDDs: the number of elements of each batch (``[0]`` when
        the batch is empty, even an RDD without partitions)."""
        counts = self.mapPartitions(lambda it: [sum(1 for _ in it)])
        with_zero = counts._transform(lambda rdd: rdd.union(rdd.ctx.parallelize([0], 1)),
                                      "count")
        return with_zero.reduce(operator.add)

    def reduce(self, func: Callable[[Any, Any], Any]) -> DStream:
        """A stream of one-element RDDs: each batch's elements combined with ``func``."""
        _check_fn(func, "reduce")
        return self.map(lambda x: (None, x)).reduceByKey(func, 1).map(lambda kv: kv[1])

    def countByValue(self) -> DStream:
        """Pairs ``(element, count)`` per batch."""
        return self.map(lambda x: (x, 1)).reduceByKey(operator.add)

    # ------------------------------------------------------------------ key-value
    def _partitions(self, numPartitions: int | None) -> int:
        return self._sc.defaultParallelism if numPartitions is None else numPartitions

    def mapValues(self, f: Callable[[Any], Any]) -> DStream:
        """Apply ``f`` to each value of ``(key, value)`` pairs."""
        _check_fn(f, "mapValues")
        return self._transform(lambda rdd: rdd.mapValues(f), "mapValues")

    def flatMapValues(self, f: Callable[[Any], Iterable[Any]]) -> DStream:
        """Apply ``f`` to each value and pair every item it returns with the key."""
        _check_fn(f, "flatMapValues")
        return self._transform(lambda rdd: rdd.flatMapValues(f), "flatMapValues")

    def partitionBy(self, numPartitions: int,
                    partitionFunc: Callable[[Any], int] = portable_hash) -> DStream:
        """Each batch regrouped into ``numPartitions`` partitions by key."""
        return self._transform(lambda rdd: rdd.partitionBy(numPartitions, partitionFunc),
                               "partitionBy")

    def combineByKey(self, createCombiner: Callable[[Any], Any],
                     mergeValue: Callable[[Any, Any], Any],
                     mergeCombiners: Callable[[Any, Any], Any],
                     numPartitions: int | None = None) -> DStream:
        """Per batch, combine the values of each key (see :meth:`ember.RDD.combineByKey`)."""
        n = self._partitions(numPartitions)
        return self._transform(
            lambda rdd: rdd.combineByKey(createCombiner, mergeValue, mergeCombiners, n),
            "combineByKey",
        )

    def reduceByKey(self, func: Callable[[Any, Any], Any],
                    numPartitions: int | None = None) -> DStream:
        """Per batch, merge the values of each key with ``func``."""
        _check_fn(func, "reduceByKey")
        n = self._partitions(numPartitions)
        return self._transform(lambda rdd: rdd.reduceByKey(func, n), "reduceByKey")

    def groupByKey(self, numPartitions: int | None = None) -> DStream:
        """Per batch, pairs ``(key, [values])``."""
        n = self._partitions(numPartitions)
        return self._transform(lambda rdd: rdd.groupByKey(n), "groupByKey")

    def _join(self, how: str, other: DStream, numPartitions: int | None) -> DStream:
        n = self._partitions(numPartitions)
        return self.transformWith(lambda a, b: getattr(a, how)(b, n), other)

    def cogroup(self, other: DStream, numPartitions: int | None = None) -> DStream:
        """Per batch, ``(key, ([values here], [values there]))``."""
        return self._join("cogroup", other, numPartitions)

    def join(self, other: DStream, numPartitions: int | None = None) -> DStream:
        """Per batch, the inner join by key: ``(key, (v, w))``."""
        return self._join("join", other, numPartitions)

    def leftOuterJoin(self, other: DStream, numPartitions: int | None = None) -> DStream:
        """Per batch, the left outer join by key."""
        return self._join("leftOuterJoin", other, numPartitions)

    def rightOuterJoin(self, other: DStream, numPartitions: int | None = None) -> DStream:
        """Per batch, the right outer join by key."""
        return self._join("rightOuterJoin", other, numPartitions)

    def fullOuterJoin(self, other: DStream, numPartitions: int | None = None) -> DStream:
        """Per batch, the full outer join by key."""
        return self._join("fullOuterJoin", other, numPartitions)

    def _rdds_between(self, from_ms: int, to_ms: int) -> list[RDD]:
        """This stream's RDDs at its batch times in ``[from_ms, to_ms]`` (computed if needed)."""
        out = []
        zero, slide = self._zero_ms, self._slide_ms
        assert zero is not None
        t = zero + -(-(from_ms - zero) // slide) * slide  # first batch time >= from_ms
        while t <= to_ms:
            if t > zero:
                rdd = self._get_or_compute(t)
                if rdd is not None:
                    out.append(rdd)
            t += slide
        return out

    # ------------------------------------------------------------------ windows
    def window(self, windowDuration: float, slideDuration: float | None = None) -> DStream:
        """A stream whose RDD at each slide is the union of this stream's RDDs in the last
        ``windowDuration`` seconds (``(t - windowDuration, t]``).

        :param slideDuration: seconds between windows (default: this stream's slide).
        """
        from ember.streaming._windows import WindowedDStream, window_durations

        window, slide = window_durations(self, windowDuration, slideDuration)
        return WindowedDStream(self, window, slide)

    def reduceByWindow(self, reduceFunc: Callable[[Any, Any], Any],
                       invReduceFunc: Callable[[Any, Any], Any] | None,
                       windowDuration: float, slideDuration: float) -> DStream:
        """A stream of one-element RDDs: all elements of each window reduced with
        ``reduceFunc`` (incrementally when ``invReduceFunc`` undoes it)."""
        _check_fn(reduceFunc, "reduceByWindow")
        keyed = self.map(lambda x: (1, x))
        reduced = keyed.reduceByKeyAndWindow(reduceFunc, invReduceFunc, windowDuration,
                                             slideDuration, 1)
        return reduced.map(lambda kv: kv[1])

    def countByWindow(self, windowDuration: float, slideDuration: float) -> DStream:
        """A stream of one-element RDDs: the number of elements in each window."""
        return self.map(lambda _x: 1).reduceByWindow(operator.add, operator.sub,
                                                     windowDuration, slideDuration)

    def countByValueAndWindow(self, windowDuration: float, slideDuration: float,
                              numPartitions: int | None = None) -> DStream:
        """Pairs ``(value, count)`` of each window (values with a count of 0 are dropped)."""
        keyed = self.map(lambda x: (x, 1))
        counted = keyed.reduceByKeyAndWindow(operator.add, operator.sub, windowDuration,
                                             slideDuration, numPartitions)
        return counted.filter(lambda kv: kv[1] > 0)

    def groupByKeyAndWindow(self, windowDuration: float, slideDuration: float,
                            numPartitions: int | None = None) -> DStream:
        """Pairs ``(key, [values in the window])``."""
        return self.window(windowDuration, slideDuration).groupByKey(numPartitions)

    def reduceByKeyAndWindow(self, func: Callable[[Any, Any], Any],
                             invFunc: Callable[[Any, Any], Any] | None,
                             windowDuration: float, slideDuration: float | None = None,
                             numPartitions: int | None = None,
                             filterFunc: Callable[[Any], bool] | None = None) -> DStream:
        """Pairs ``(key, value)``: the values of each key over each window reduced by ``func``.

        With ``invFunc`` (which undoes ``func``: ``invFunc(func(a, b), b) == a``) each window
        is computed from the previous one — old batches inverse-reduced out, new ones reduced
        in — so a slide costs the same whatever the window's length; this needs a checkpoint
        directory. ``filterFunc`` drops pairs from the kept window state (e.g. zero counts).
        """
        from ember.streaming._windows import ReducedWindowedDStream, window_durations

        _check_fn(func, "reduceByKeyAndWindow")
        window, slide = window_durations(self, windowDuration, slideDuration)
        n = self._partitions(numPartitions)
        reduced = self.reduceByKey(func, n)
        if invFunc is None:
            windowed = reduced.window(windowDuration, slideDuration).reduceByKey(func, n)
            return windowed.filter(filterFunc) if filterFunc is not None else windowed
        _check_fn(invFunc, "reduceByKeyAndWindow's invFunc")
        return ReducedWindowedDStream(reduced, func, invFunc, window, slide, n, filterFunc)

    # ------------------------------------------------------------------ state
    def updateStateByKey(self, updateFunc: Callable[[list, Any], Any],
                         numPartitions: int | None = None, initialRDD: Any = None) -> DStream:
        """A stream of ``(key, state)``: ``updateFunc(new_values, last_state)`` for every key
        each batch (``last_state`` is ``None`` the first time; returning ``None`` removes the
        key). Needs a checkpoint directory.

        :param initialRDD: ``(key, state)`` pairs (an RDD or a list) to start from.
        """
        from ember.streaming._state import StateDStream

        _check_fn(updateFunc, "updateStateByKey")
        if initialRDD is not None and not isinstance(initialRDD, RDD):
            initialRDD = self._sc.parallelize(list(initialRDD))
        return StateDStream(self, updateFunc, numPartitions, initialRDD)

    def mapWithState(self, spec: Any) -> DStream:
        """Map each ``(key, value)`` with per-key state (see :class:`StateSpec`).

        Only keys with new data (or timing out) are touched in a batch. The result has
        ``stateSnapshots()`` for the whole state after each batch. Needs a checkpoint
        directory.
        """
        from ember.streaming._state import MappedWithStateDStream, MapWithStateDStream
        from ember.streaming.state import StateSpec

        if not isinstance(spec, StateSpec):
            raise TypeError(
                f"mapWithState expects a StateSpec (StateSpec.function(f)), got {spec!r:.80}"
            )
        if spec.initial_rdd is not None and not isinstance(spec.initial_rdd, RDD):
            spec.initial_rdd = self._sc.parallelize(list(spec.initial_rdd))
        return MappedWithStateDStream(MapWithStateDStream(self, spec))

    # ------------------------------------------------------------------ batches by time
    def slice(self, begin: Any, end: Any) -> list[RDD]:
        """The RDDs of the batches from ``begin`` to ``end`` (both included).

        ``begin`` and ``end`` are ``datetime`` objects or seconds since the epoch; times that
        are not batch times are rounded down to one. Only batches still remembered (see
        ``StreamingContext.remember``) can be returned.
        """
        if self._zero_ms is None:
            raise RuntimeError(
                f"{self!r} has not been started: slice() needs a started StreamingContext"
            )
        lo, hi = _to_ms(begin, "begin"), _to_ms(end, "end")
        zero, slide = self._zero_ms, self._slide_ms
        lo = zero + ((lo - zero) // slide) * slide
        hi = zero + ((hi - zero) // slide) * slide
        out = []
        t = lo
        while t <= hi:
            with self._lock:
                rdd = self._generated.get(t)
            if rdd is not None:
                out.append(rdd)
            t += slide
        return out

    # ------------------------------------------------------------------ persistence
    def persist(self, storageLevel: StorageLevel) -> DStream:
        """Persist every RDD of this stream at ``storageLevel``."""
        if not isinstance(storageLevel, StorageLevel):
            raise TypeError(f"persist expects a StorageLevel, got {storageLevel!r}")
        self._level = storageLevel
        return self

    def cache(self) -> DStream:
        """Persist every RDD serialized in memory (the guide's default for DStreams)."""
        return self.persist(StorageLevel.MEMORY_ONLY_SER)

    def checkpoint(self, interval: float) -> DStream:
        """Save this stream's RDDs to the checkpoint directory every ``interval`` seconds.

        ``interval`` must be a multiple of the slide duration. Cuts the lineage of stateful
        streams so recovery time does not grow with the stream's age.
        """
        ms = duration_ms(interval, "checkpoint interval")
        if ms % self._slide_ms:
            raise ValueError(
                f"checkpoint interval {interval} s must be a multiple of the slide duration "
                f"{self.slideDuration()} s"
            )
        self._checkpoint_ms = ms
        self.persist(self._level or StorageLevel.MEMORY_ONLY_SER)
        return self

    # ------------------------------------------------------------------ output operations
    def _output(self, sink: Any, name: str) -> None:
        from ember.streaming._dstreams import OutputDStream

        OutputDStream(self, sink, name, callsite(name))

    def foreachRDD(self, func: Callable[..., Any]) -> None:
        """Call ``func(rdd)`` or ``func(time, rdd)`` on the driver for every batch.

        ``time`` is the batch time as a local ``datetime``, as in PySpark.
        """
        from ember.plugins import load_component

        sink = load_component("sinks", "foreach")(func)
        self._output(sink, "foreachRDD")

    def pprint(self, num: int = 10) -> None:
        """Print the first ``num`` elements of every batch, under a header with its time.

        The layout is the guide's::

            -------------------------------------------
            Time: 2024-01-01 12:00:01
            -------------------------------------------
            ('hello', 1)
            ...
        """
        if isinstance(num, bool) or not isinstance(num, int) or num < 0:
            raise ValueError(f"pprint's num must be an integer >= 0, got {num!r}")

        def take_and_print(time: datetime.datetime, rdd: RDD) -> None:
            taken = rdd.take(num + 1)
            lines = ["-------------------------------------------", f"Time: {time}",
                     "-------------------------------------------"]
            lines.extend(str(record) for record in taken[:num])
            if len(taken) > num:
                lines.append("...")
            lines.append("")
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()

        from ember.plugins import load_component

        self._output(load_component("sinks", "foreach")(take_and_print), "pprint")

    def saveAsTextFiles(self, prefix: str, suffix: str | None = None) -> None:
        """Write every batch as a text directory ``prefix-TIME_IN_MS[.suffix]``.

        Needs the ``ember-text`` sink plugin. Each directory appears complete or not at all,
        and re-running a batch replaces its directory.
        """
        from ember.plugins import load_component

        self._output(load_component("sinks", "text")(prefix=prefix, suffix=suffix),
                     "saveAsTextFiles")

    def saveAsObjectFiles(self, prefix: str, suffix: str | None = None) -> None:
        """Write every batch with the configured serializer as ``prefix-TIME_IN_MS[.suffix]``.

        Needs the ``ember-objectfile`` sink plugin; read a batch back with
        ``Context.pickleFile``.
        """
        from ember.plugins import load_component

        self._output(load_component("sinks", "objectfile")(prefix=prefix, suffix=suffix),
                     "saveAsObjectFiles")
