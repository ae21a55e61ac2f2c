"""Streaming word-count throughput against a plain single-process Counter loop.

    python benchmarks/streaming_throughput.py [--batches 10] [--lines 100000] [--repeat 3]

queueStream batches of ``--lines`` lines (10 words a line, 50k-word Zipf vocabulary) through
flatMap → map → reduceByKey → foreachRDD(collect) at local[2]. The clock is a ManualClock
moved past every batch at once, so batches run back to back as fast as the engine goes; the
time is from the first batch's submission to the last batch's end. Beside it, in the same
run, the plain loop counts the same lines with ``collections.Counter``. The two take turns
``--repeat`` times and the best run of each counts (``ratio``; the ratio of the medians is
printed too), so a busy moment on a shared machine hurts both alike. The queued lists are
parallelized when ``queueStream`` is called, before the clock starts, as in PySpark. Prints
one JSON object with words/s for both and the ratio; totals are checked equal every run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _corpus import lines as make_lines
from _wordcount_stream import run_word_count
from ember import Context


def plain_seconds(batches: list[list[str]]) -> tuple[float, collections.Counter]:
    """The plain loop: every line's words into one ``collections.Counter``."""
    t0 = time.perf_counter()
    expected: collections.Counter = collections.Counter()
    for batch in batches:
        for line in batch:
            expected.update(line.split())
    return time.perf_counter() - t0, expected


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    corpus = make_lines(args.lines * args.batches)
    batches = [corpus[i * args.lines : (i + 1) * args.lines] for i in range(args.batches)]
    words = sum(len(line.split()) for line in corpus)

    sc = Context(args.master, "streaming_throughput")
    sc.parallelize([0], 1).count()
    plain: list[float] = []
    engine: list[float] = []
    for _ in range(args.repeat):  # taking turns, so a busy moment hurts both alike
        seconds, expected = plain_seconds(batches)
        plain.append(seconds)
        seconds, total = run_word_count(sc, batches)
        engine.append(seconds)
        if total != expected:
            raise SystemExit("streaming and plain counts differ")
    sc.stop()
    print(json.dumps({
        "benchmark": "streaming_throughput",
        "master": args.master,
        "batches": args.batches,
        "lines_per_batch": args.lines,
        "words": words,
        "engine_words_per_s": round(words / min(engine)),
        "plain_counter_words_per_s": round(words / min(plain)),
        "ratio": round(min(plain) / min(engine), 3),
        "ratio_of_medians": round(statistics.median(plain) / statistics.median(engine), 3),
        "engine_seconds": [round(s, 3) for s in engine],
        "plain_seconds": [round(s, 3) for s in plain],
        "load_average_1min": round(os.getloadavg()[0], 2),
        "target": {"ratio": ">= 1.0"},
    }))


if __name__ == "__main__":
    main()
