"""Per-batch overhead of the streaming engine: tiny batches at a 0.1 s interval, local[2].

    python benchmarks/streaming_overhead.py [--batches 50] [--interval 0.1]

queueStream batches of 10 records through map → reduceByKey → foreachRDD(collect), on the
system clock. Prints one JSON object: the median and p95 processing time of a batch, and the
scheduling delay of the first and last ten batches (it must not grow). BatchInfo's times
are whole milliseconds, as in Spark, so a batch of 2.6 ms shows 2 or 3; the ``_precise``
figures time the same span (from the batch-started to the batch-completed event) with
``perf_counter``.
"""

from __future__ import annotations

import argparse
import json
import operator
import statistics
import threading
import time

from ember import Context
from ember.streaming import StreamingContext, StreamingListener


class _Collect(StreamingListener):
    """Keeps every BatchInfo, and the batch's processing time read off ``perf_counter``
    between the batch-started and batch-completed events (BatchInfo has whole ms)."""

    def __init__(self, n: int) -> None:
        self.infos: list = []
        self.precise_ms: list[float] = []
        self.started = 0.0
        self.n = n
        self.done = threading.Event()

    def onBatchStarted(self, batchStarted) -> None:
        self.started = time.perf_counter()

    def onBatchCompleted(self, batchCompleted) -> None:
        self.precise_ms.append((time.perf_counter() - self.started) * 1000)
        self.infos.append(batchCompleted.batchInfo())
        if len(self.infos) >= self.n:
            self.done.set()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    warmup = 5
    batches = [[f"k{(b * 10 + i) % 7}" for i in range(10)] for b in range(args.batches + warmup)]
    sc = Context(args.master, "streaming_overhead")
    sc.parallelize([0], 1).count()
    ssc = StreamingContext(sc, args.interval)
    results: list = []
    (
        ssc.queueStream(batches)
        .map(lambda w: (w, 1))
        .reduceByKey(operator.add)
        .foreachRDD(lambda rdd: results.append(rdd.collect()))
    )
    listener = _Collect(args.batches + warmup)
    ssc.addStreamingListener(listener)
    ssc.start()
    finished = listener.done.wait(args.interval * (args.batches + warmup) * 5 + 30)
    ssc.stop(stopSparkContext=True, stopGraceFully=False)
    if not finished:
        raise SystemExit(f"only {len(listener.infos)} batches completed")
    infos = listener.infos[warmup:]
    processing = [i.processingDelay() for i in infos]
    precise = listener.precise_ms[warmup:]
    scheduling = [i.schedulingDelay() for i in infos]
    for got in results:
        if sum(v for _, v in got) != 10:
            raise SystemExit(f"wrong batch result {got}")
    print(json.dumps({
        "benchmark": "streaming_overhead",
        "master": args.master,
        "interval_s": args.interval,
        "batches": len(infos),
        "processing_ms_median": statistics.median(processing),
        "processing_ms_p95": percentile(processing, 0.95),
        "processing_ms_median_precise": round(statistics.median(precise), 3),
        "processing_ms_p95_precise": round(percentile(precise, 0.95), 3),
        "scheduling_delay_ms_first10_mean": statistics.mean(scheduling[:10]),
        "scheduling_delay_ms_last10_mean": statistics.mean(scheduling[-10:]),
        "scheduling_delay_ms_max": max(scheduling),
        "target": {"processing_ms_median": "< 3", "processing_ms_p95": "< 10",
                   "scheduling_delay": "no growth"},
    }))


if __name__ == "__main__":
    main()
