"""Streaming word-count throughput against a plain single-process Counter loop.

    python benchmarks/streaming_throughput.py [--batches 10] [--lines 100000]

queueStream batches of ``--lines`` lines (10 words a line, 50k-word Zipf vocabulary) through
flatMap → map → reduceByKey → foreachRDD(collect) at local[2]. The clock is a ManualClock
moved past every batch at once, so batches run back to back as fast as the engine goes; the
time is from the first batch's submission to the last batch's end. Beside it, in the same
run, the plain loop counts the same lines with ``collections.Counter``. Prints one JSON
object with words/s for both and the ratio; totals are checked equal.
"""

from __future__ import annotations

import argparse
import collections
import json
import operator
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _corpus import lines as make_lines
from ember import Context
from ember.streaming import StreamingContext
from ember.testing import ManualClock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    corpus = make_lines(args.lines * args.batches)
    batches = [corpus[i * args.lines : (i + 1) * args.lines] for i in range(args.batches)]
    words = sum(len(line.split()) for line in corpus)

    t0 = time.perf_counter()
    expected: collections.Counter = collections.Counter()
    for batch in batches:
        for line in batch:
            expected.update(line.split())
    plain_s = time.perf_counter() - t0

    sc = Context(args.master, "streaming_throughput")
    sc.parallelize([0], 1).count()
    clock = ManualClock()
    ssc = StreamingContext(sc, 1.0, clock=clock)
    total: collections.Counter = collections.Counter()
    (
        ssc.queueStream(batches)
        .flatMap(str.split)
        .map(lambda w: (w, 1))
        .reduceByKey(operator.add)
        .foreachRDD(lambda rdd: total.update(dict(rdd.collect())))
    )
    ssc.start()
    t0 = time.perf_counter()
    clock.advance(args.batches * 1.0)
    ssc._await_batch(args.batches * 1000, timeout=600)
    engine_s = time.perf_counter() - t0
    ssc.stop()
    if total != expected:
        raise SystemExit("streaming and plain counts differ")
    print(json.dumps({
        "benchmark": "streaming_throughput",
        "master": args.master,
        "batches": args.batches,
        "lines_per_batch": args.lines,
        "words": words,
        "engine_words_per_s": round(words / engine_s),
        "plain_counter_words_per_s": round(words / plain_s),
        "ratio": round(plain_s / engine_s, 3),
        "target": {"ratio": ">= 1.0"},
    }))


if __name__ == "__main__":
    main()
