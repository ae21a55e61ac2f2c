"""The streaming word count the throughput benchmarks share: queueStream batches through
flatMap → map → reduceByKey → foreachRDD(collect), counted into one Counter on the driver."""

from __future__ import annotations

import collections
import operator
import time
from typing import Any

from ember.streaming import StreamingContext
from ember.testing import ManualClock


def word_count_stream(ssc: StreamingContext, batches: list[list[str]]) -> collections.Counter:
    """Wire the word count of ``batches`` into ``ssc``; the Counter its batches fill."""
    total: collections.Counter = collections.Counter()
    (
        ssc.queueStream(batches)
        .flatMap(str.split)
        .map(lambda w: (w, 1))
        .reduceByKey(operator.add)
        .foreachRDD(lambda rdd: total.update(dict(rdd.collect())))
    )
    return total


def run_word_count(sc: Any, batches: list[list[str]]) -> tuple[float, collections.Counter]:
    """One run on a fresh StreamingContext (``sc`` stays): a ManualClock moved past every
    batch at once, so batches run back to back; the seconds from the first batch's submission
    to the last batch's end, and the counts."""
    clock = ManualClock()
    ssc = StreamingContext(sc, 1.0, clock=clock)
    total = word_count_stream(ssc, batches)
    ssc.start()
    t0 = time.perf_counter()
    clock.advance(len(batches) * 1.0)
    ssc._await_batch(len(batches) * 1000, timeout=600)
    seconds = time.perf_counter() - t0
    ssc.stop(stopSparkContext=False)
    return seconds, total
