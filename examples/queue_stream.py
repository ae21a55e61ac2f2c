"""A stream made from a queue of RDDs: counts of numbers by their last digit, per batch.

    python examples/queue_stream.py [--batches 4] [--interval 0.5] [--master local[2]]

Written against PySpark's API through ``ember.pyspark``: it is PySpark's queue-stream example
idea with the import prefix ``pyspark`` changed to ``ember.pyspark``. Each batch takes the
next RDD of the queue (a thousand numbers), maps every number ``x`` to ``(x % 10, 1)`` and
adds up the ones per key, so every batch prints ten pairs ``(digit, 100)``. The program stops
by itself once the queue's batches are done: a ``StreamingListener`` counts the completed
batches, so nothing waits longer than the batches take.
"""

from __future__ import annotations

import argparse
from operator import add

from _demo import BatchCounter
from ember.pyspark import SparkContext
from ember.pyspark.streaming import StreamingContext


def main() -> None:
    """Run the example."""
    ap = argparse.ArgumentParser(description="Count numbers by last digit over a queue stream.")
    ap.add_argument("--batches", type=int, default=4, help="RDDs in the queue (default 4)")
    ap.add_argument("--interval", type=float, default=0.5, help="batch interval in s (0.5)")
    ap.add_argument("--master", default="local[2]", help="where tasks run (default local[2])")
    args = ap.parse_args()

    sc = SparkContext(args.master, "PythonStreamingQueueStream")
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, args.interval)

    # The queue: one RDD of the numbers 1..1000, in 4 partitions, per batch.
    queue = [sc.parallelize(range(1, 1001), 4) for _ in range(args.batches)]
    numbers = ssc.queueStream(queue)
    by_digit = numbers.map(lambda x: (x % 10, 1)).reduceByKey(add)
    by_digit.pprint()

    listener = BatchCounter(args.batches)
    ssc.addStreamingListener(listener)
    ssc.start()
    finished = listener.done.wait(timeout=30 + args.batches * args.interval)
    ssc.stop(stopSparkContext=True, stopGraceFully=True)
    if not finished:
        raise SystemExit("the batches did not complete in time")


if __name__ == "__main__":
    main()
