"""The ``queue`` source: a queue of RDDs (or lists), one per batch — ``ssc.queueStream``.

Registered from ember-core itself, so ``ember.testing`` works with only ember-core installed.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from ember.rdd import RDD
from ember.sources import Delivery, PullSource

if TYPE_CHECKING:
    from ember.streaming.context import StreamingContext

__all__ = ["QueueSource"]


@attrs.frozen
class _Parallelized:
    """A queued list, already made an RDD, and how many records it had."""

    rdd: RDD
    count: int | None


class QueueSource(PullSource):
    """Each batch takes the next item of ``rdds`` (or all of them with ``oneAtATime=False``).

    :param rdds: RDDs or plain lists. The items are taken when the stream is created, and
        each list becomes ``parallelize(list)`` right then, as PySpark's ``queueStream``
        does: its records are serialized once, before the stream starts, not in the
        scheduler's thread while earlier batches run. Later changes to the caller's lists
        are not seen (as in PySpark).
    :param oneAtATime: one item per batch (default), or everything queued in one batch.
    :param default: the RDD (or list) of a batch when the queue is empty; an empty RDD if
        ``None``.

    Queue streams cannot be recovered from a checkpoint: their data lives only in memory.
    """

    name = "queue"
    delivery = Delivery.AT_MOST_ONCE

    def __init__(self, rdds: Iterable[Any], oneAtATime: bool = True,
                 default: Any = None) -> None:
        if isinstance(rdds, (str, bytes)) or not isinstance(rdds, Iterable):
            raise TypeError(
                f"queueStream expects a list of RDDs or lists, got {type(rdds).__name__}"
            )
        items = list(rdds)
        for item in items:
            if not isinstance(item, (RDD, list, tuple, range)):
                raise TypeError(
                    f"queueStream items must be RDDs or lists, got {type(item).__name__}: "
                    f"{item!r:.80}"
                )
        if default is not None and not isinstance(default, (RDD, list, tuple, range)):
            raise TypeError(f"queueStream's default must be an RDD or a list, got {default!r:.80}")
        self._queue: collections.deque[Any] = collections.deque(items)
        self._lock = threading.Lock()
        self.oneAtATime = oneAtATime
        self.default = default

    def createStream(self, ssc: StreamingContext) -> Any:
        with self._lock:
            self._queue = collections.deque(
                _Parallelized(*self._rdd(ssc, item)) for item in self._queue
            )
        return super().createStream(ssc)

    def describe(self) -> str:
        return f"queue of {len(self._queue)} batches"

    def _rdd(self, ssc: StreamingContext, item: Any) -> tuple[RDD, int | None]:
        if isinstance(item, _Parallelized):
            return item.rdd, item.count
        if isinstance(item, RDD):
            return item, None
        return ssc.sparkContext.parallelize(item), len(item)

    def compute(self, ssc: StreamingContext, batch_time_ms: int) -> tuple[RDD, int | None]:
        with self._lock:
            if self.oneAtATime and self._queue:
                taken = [self._queue.popleft()]
            else:
                taken = list(self._queue)
                self._queue.clear()
        if not taken:
            if self.default is not None:
                return self._rdd(ssc, self.default)
            return ssc.sparkContext.emptyRDD(), 0
        pairs = [self._rdd(ssc, item) for item in taken]
        if len(pairs) == 1:
            return pairs[0]
        counts = [n for _, n in pairs]
        total = None if None in counts else sum(counts)  # type: ignore[arg-type]
        return ssc.sparkContext.union([r for r, _ in pairs]), total
