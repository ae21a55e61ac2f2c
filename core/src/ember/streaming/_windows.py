"""Window operations: streams whose RDD at time ``t`` covers the parent's batches in
``(t - window, t]``, produced every ``slide``.

Both durations must be multiples of the parent's slide duration. A windowed stream keeps
its parent's RDDs (serialized in memory) for the window's length, so batches are not
recomputed for every window they fall in. ``reduceByKeyAndWindow`` with an inverse function
is incremental: each window is the previous one, minus the batches that left (the inverse
function), plus the batches that came in — the cost of a slide does not grow with the
window's length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ember.rdd import RDD
from ember.storagelevel import StorageLevel
from ember.streaming.dstream import DStream, duration_ms

if TYPE_CHECKING:
    pass

__all__ = ["ReducedWindowedDStream", "WindowedDStream", "window_durations"]


def window_durations(parent: DStream, windowDuration: float,
                     slideDuration: float | None) -> tuple[int, int]:
    """Window and slide in ms, checked against the parent's slide (a clear error if not)."""
    window = duration_ms(windowDuration, "windowDuration")
    slide = parent._slide_ms if slideDuration is None else duration_ms(slideDuration,
                                                                        "slideDuration")
    for name, value in (("windowDuration", window), ("slideDuration", slide)):
        if value % parent._slide_ms:
            raise ValueError(
                f"{name} {value / 1000} s must be a multiple of the parent stream's slide "
                f"duration {parent._slide_ms / 1000} s"
            )
    return window, slide


class WindowedDStream(DStream):
    """The union of the parent's RDDs in each window."""

    def __init__(self, parent: DStream, window_ms: int, slide_ms: int) -> None:
        super().__init__(parent._ssc, [parent], slide_ms)
        self._window_ms = window_ms
        if parent._level is None:
            parent.persist(StorageLevel.MEMORY_ONLY_SER)

    def _parent_remember_ms(self) -> int:
        return self._remember_ms + self._window_ms

    def _compute(self, time_ms: int) -> RDD | None:
        parent = self._parents[0]
        rdds = parent._rdds_between(time_ms - self._window_ms + parent._slide_ms, time_ms)
        if not rdds:
            return self._ssc.sparkContext.emptyRDD()
        return self._ssc.sparkContext.union(rdds)


class ReducedWindowedDStream(DStream):
    """``reduceByKeyAndWindow`` with an inverse function, computed incrementally (when
    consecutive windows overlap; a window no longer than its slide is reduced afresh).

    :param parent: the per-batch reduced stream of ``(key, value)`` pairs.
    """

    def __init__(self, parent: DStream, func: Callable[[Any, Any], Any],
                 inv_func: Callable[[Any, Any], Any], window_ms: int, slide_ms: int,
                 num_partitions: int, filter_func: Callable[[Any], bool] | None) -> None:
        super().__init__(parent._ssc, [parent], slide_ms)
        self._window_ms = window_ms
        self._func = func
        self._inv_func = inv_func
        self._num_partitions = num_partitions
        self._filter_func = filter_func
        if parent._level is None:
            parent.persist(StorageLevel.MEMORY_ONLY_SER)
        self.persist(StorageLevel.MEMORY_ONLY_SER)

    _must_checkpoint = True

    def _initialize(self, zero_ms: int) -> None:
        from ember.streaming._state import _default_checkpoint_ms

        super()._initialize(zero_ms)
        if self._checkpoint_ms is None:
            self._checkpoint_ms = _default_checkpoint_ms(self._slide_ms)

    def _parent_remember_ms(self) -> int:
        return self._remember_ms + self._window_ms + self._slide_ms

    def _remember(self, ms: int) -> None:
        # the previous window's RDD is needed to compute the next one
        super()._remember(max(ms, self._slide_ms * 2))

    def _compute(self, time_ms: int) -> RDD | None:
        parent = self._parents[0]
        sc = self._ssc.sparkContext
        func, inv, n = self._func, self._inv_func, self._num_partitions
        prev_end = time_ms - self._slide_ms
        previous = None
        # Incremental only when consecutive windows overlap: with slide >= window the
        # batches between two windows would be "removed" from keys the previous window
        # never had, and leak into the result.
        if self._slide_ms < self._window_ms and self._is_time_valid(prev_end):
            previous = self._get_or_compute(prev_end)
        if previous is None:
            rdds = parent._rdds_between(time_ms - self._window_ms + parent._slide_ms, time_ms)
            if not rdds:
                result = sc.emptyRDD()
            else:
                result = sc.union(rdds).reduceByKey(func, n)
        else:
            old = parent._rdds_between(prev_end - self._window_ms + parent._slide_ms,
                                       time_ms - self._window_ms)
            new = parent._rdds_between(prev_end + parent._slide_ms, time_ms)
            result = previous
            if old:
                leaving = sc.union(old).reduceByKey(func, n)
                result = result.leftOuterJoin(leaving, n).mapValues(
                    lambda vw: vw[0] if vw[1] is None else inv(vw[0], vw[1])
                )
            if new:
                result = result.union(sc.union(new)).reduceByKey(func, n)
        if self._filter_func is not None:
            result = result.filter(self._filter_func)
        return result
