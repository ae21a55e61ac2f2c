"""Stateful streams: ``updateStateByKey`` and ``mapWithState``.

The state of batch ``t`` is computed from the state of batch ``t - slide`` and batch ``t``'s
new data, partition by partition: the new data is shuffled to the state's partitioning and
the two are zipped (no shuffle of the state itself). State partitions are persisted in the
memory of the worker that computed them and the next batch's task for that partition goes
to that worker, so state is read in place. Every checkpoint interval the state is saved to
the checkpoint directory, cutting the lineage.

``mapWithState`` keeps each partition's state in a :class:`StateMap`: a copy-on-write layer
over the previous batch's map, so a batch writes only the keys it touches; every
``_DELTA_CHAIN`` batches (and at checkpoints) the layers are folded into one dict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ember._engine.partitioning import HashPartitioner
from ember.rdd import RDD
from ember.storagelevel import StorageLevel
from ember.streaming.dstream import DStream
from ember.streaming.state import State, StateSpec

__all__ = ["MapWithStateDStream", "StateDStream", "StateMap"]

_DELTA_CHAIN = 20
_DELETED = object()


class StateMap:
    """Key → (state, last update time) as a copy-on-write layer over a parent map."""

    __slots__ = ("_delta", "_depth", "_parent")

    def __init__(self, parent: StateMap | None = None,
                 data: dict[Any, Any] | None = None) -> None:
        self._parent = parent
        self._delta: dict[Any, Any] = data if data is not None else {}
        self._depth = 0 if parent is None else parent._depth + 1

    def get(self, key: Any) -> tuple[Any, int] | None:
        m: StateMap | None = self
        while m is not None:
            entry = m._delta.get(key)
            if entry is not None:
                return None if entry is _DELETED else entry
            m = m._parent
        return None

    def put(self, key: Any, value: Any, time_ms: int) -> None:
        self._delta[key] = (value, time_ms)

    def remove(self, key: Any) -> None:
        if self._parent is None:
            self._delta.pop(key, None)
        else:
            self._delta[key] = _DELETED

    def flat(self) -> dict[Any, tuple[Any, int]]:
        """All live entries as one dict (O(state))."""
        if self._parent is None:
            return dict(self._delta)
        out = self._parent.flat()
        for k, v in self._delta.items():
            if v is _DELETED:
                out.pop(k, None)
            else:
                out[k] = v
        return out

    def child(self) -> StateMap:
        """A new layer for the next batch; folds the chain when it got long."""
        if self._depth >= _DELTA_CHAIN:
            return StateMap(StateMap(data=self.flat()))
        return StateMap(self)

    def items(self) -> Iterator[tuple[Any, Any]]:
        """``(key, state)`` pairs."""
        return ((k, v[0]) for k, v in self.flat().items())

    def __reduce__(self):  # checkpoints store the flattened map
        return (StateMap, (None, self.flat()))

    def __len__(self) -> int:
        return len(self.flat())


class _StateRecord:
    """One partition of a ``mapWithState`` state RDD: its map and this batch's mapped values."""

    __slots__ = ("mapped", "state_map")

    def __init__(self, state_map: StateMap, mapped: list[Any]) -> None:
        self.state_map = state_map
        self.mapped = mapped

    def __reduce__(self):
        # A checkpoint keeps the batch's output too: once saved, the RDD is read back from
        # the checkpoint by the batch's later output operations (and by a re-run batch).
        return (_StateRecord, (self.state_map, self.mapped))


def _default_checkpoint_ms(slide_ms: int) -> int:
    """The smallest multiple of the slide that is at least 10 s."""
    return max(1, -(-10_000 // slide_ms)) * slide_ms


class _StatefulDStream(DStream):
    """Common parts: previous state, partitioning, persistence, mandatory checkpoints."""

    def __init__(self, parent: DStream, num_partitions: int | None, initial_rdd: Any) -> None:
        super().__init__(parent._ssc, [parent], parent._slide_ms)
        self._n = num_partitions or parent._sc.defaultParallelism
        self._partitioner = HashPartitioner(self._n)
        self._initial = initial_rdd
        self._initial_records: list | None = None
        self._must_checkpoint = True
        self.persist(StorageLevel.MEMORY_ONLY)

    def __getstate__(self) -> dict[str, Any]:
        """A checkpoint keeps the initial state as records: an RDD cannot be pickled."""
        state = super().__getstate__()
        if isinstance(self._initial, RDD):
            if self._initial_records is None:
                self._initial_records = self._initial.collect()
            state["_initial"] = None
            state["_initial_records"] = self._initial_records
        return state

    def _initial_rdd(self) -> RDD | None:
        if self._initial is None and self._initial_records is not None:
            self._initial = self._ssc.sparkContext.parallelize(self._initial_records)
        return self._initial

    def _initialize(self, zero_ms: int) -> None:
        super()._initialize(zero_ms)
        if self._checkpoint_ms is None:
            self._checkpoint_ms = _default_checkpoint_ms(self._slide_ms)

    def _remember(self, ms: int) -> None:
        super()._remember(max(ms, self._slide_ms * 2))

    def _clear_metadata(self, time_ms: int) -> None:
        # A batch reads only the previous batch's state. Older states stay remembered (for
        # recovery and slice) but leave the workers' memory once a newer one is stored there:
        # else the remember duration (two checkpoint intervals, 200 batches of 0.1 s) keeps
        # a copy of the whole state per batch (updateStateByKey) or per chain fold.
        with self._lock:
            times = sorted(self._generated, reverse=True)
            newest = next((t for t in times if self._generated[t]._all_cached()), None)
            if newest is not None:
                for t in times:
                    rdd = self._generated[t]
                    if t < newest and rdd.is_cached:
                        rdd.unpersist()
        super()._clear_metadata(time_ms)

    def _previous(self, time_ms: int) -> RDD | None:
        prev_t = time_ms - self._slide_ms
        if self._is_time_valid(prev_t):
            return self._get_or_compute(prev_t)
        return None


class StateDStream(_StatefulDStream):
    """``updateStateByKey``: ``updateFunc(new_values, old_state)`` for every key, every batch."""

    def __init__(self, parent: DStream, update_func: Callable[[list, Any], Any],
                 num_partitions: int | None, initial_rdd: Any) -> None:
        super().__init__(parent, num_partitions, initial_rdd)
        self._update = update_func

    def _compute(self, time_ms: int) -> RDD | None:
        update, n, part = self._update, self._n, self._partitioner
        new = self._parents[0]._get_or_compute(time_ms)
        grouped = new.groupByKey(n) if new is not None else None
        prev = self._previous(time_ms)
        initial = self._initial_rdd()
        if prev is None and initial is not None:
            prev = initial.partitionBy(n)
        if prev is None:
            if grouped is None:
                return None
            return grouped.mapValues(lambda vs: update(vs, None)).filter(
                lambda kv: kv[1] is not None
            )
        if grouped is None:
            grouped = self._ssc.sparkContext.parallelize([], n).partitionBy(n)

        def merge(_i: int, states: Iterator[Any], news: Iterator[Any]) -> list:
            fresh = dict(news)
            out = []
            for k, s in states:
                r = update(fresh.pop(k, []), s)
                if r is not None:
                    out.append((k, r))
            for k, vs in fresh.items():
                r = update(vs, None)
                if r is not None:
                    out.append((k, r))
            return out

        from ember._engine.rdds import ZippedPartitionsRDD

        if prev.partitioner != part:
            prev = prev.partitionBy(n)
        return ZippedPartitionsRDD([prev, grouped], merge)


class MapWithStateDStream(_StatefulDStream):
    """The state stream behind ``mapWithState``: one :class:`_StateRecord` per partition."""

    def __init__(self, parent: DStream, spec: StateSpec) -> None:
        super().__init__(parent, spec.num_partitions, spec.initial_rdd)
        self._spec = spec

    def _compute(self, time_ms: int) -> RDD | None:
        func, n = self._spec.mapping_function, self._n
        timeout = self._spec.timeout_ms
        full_scan = self._checkpoint_ms is not None and \
            (time_ms - self._zero_ms) % self._checkpoint_ms == 0  # type: ignore[operator]
        new = self._parents[0]._get_or_compute(time_ms)
        data = (new if new is not None else self._ssc.sparkContext.parallelize([], n))
        data = data.partitionBy(n)
        prev = self._previous(time_ms)
        if prev is None:
            initial = self._initial_rdd()
            if initial is not None:
                prev = initial.partitionBy(n).mapPartitions(
                    lambda it: [_StateRecord(StateMap(data={k: (v, time_ms) for k, v in it}), [])],
                    True,
                )
            else:
                prev = self._ssc.sparkContext.parallelize([], n).partitionBy(n).mapPartitions(
                    lambda it: [_StateRecord(StateMap(), [])], True
                )

        def step(_i: int, records: Iterator[Any], pairs: Iterator[Any]) -> list:
            previous = next(iter(records), None)
            base = previous.state_map if previous is not None else StateMap()
            smap = base.child()
            mapped = []
            for key, value in pairs:
                entry = smap.get(key)
                state = State(entry[0]) if entry is not None else State()
                result = func(key, value, state)
                if state._removed:
                    smap.remove(key)
                elif state._updated:
                    smap.put(key, state._value, time_ms)
                elif entry is not None:
                    smap.put(key, entry[0], time_ms)  # touched: its idle time restarts
                mapped.append(result)
            if full_scan:
                if timeout is not None:
                    for key, (value, last) in list(smap.flat().items()):
                        if time_ms - last >= timeout:
                            mapped.append(func(key, None, State(value, timing_out=True)))
                            smap.remove(key)
                smap = StateMap(data=smap.flat())
            return [_StateRecord(smap, mapped)]

        from ember._engine.rdds import ZippedPartitionsRDD

        return ZippedPartitionsRDD([prev, data], step)

    def mapped(self) -> DStream:
        return self._transform(
            lambda rdd: rdd.mapPartitions(lambda it: (m for rec in it for m in rec.mapped)),
            "mapWithState",
        )

    def snapshots(self) -> DStream:
        return self._transform(
            lambda rdd: rdd.mapPartitions(lambda it: (kv for rec in it for kv in
                                                      rec.state_map.items())),
            "stateSnapshots",
        )


class MappedWithStateDStream(DStream):
    """What ``mapWithState`` returns: the mapped values, plus :meth:`stateSnapshots`."""

    def __init__(self, state_stream: MapWithStateDStream) -> None:
        inner = state_stream.mapped()
        super().__init__(inner._ssc, [inner], inner._slide_ms)
        self._state_stream = state_stream

    def _compute(self, time_ms: int) -> RDD | None:
        return self._parents[0]._get_or_compute(time_ms)

    def stateSnapshots(self) -> DStream:
        """A stream of every ``(key, state)`` pair after each batch (costs O(state))."""
        return self._state_stream.snapshots()

    def checkpoint(self, interval: float) -> DStream:
        """Checkpoint the *state* every ``interval`` seconds (as Spark's ``mapWithState``).

        The interval also sets when idle keys time out: they are found at checkpoints.
        """
        self._state_stream.checkpoint(interval)
        return self
