"""Word count on the RDD engine at local[2] against a plain single-process Counter loop.

    python benchmarks/rdd_wordcount.py [--words 2000000] [--repeat 3]

Prints one JSON object: words/s for the engine (flatMap → map → reduceByKey → collect over a
text file) and for the plain loop over the same file, their ratio, and the median latency of
``count()`` on one tiny partition. Both counts are checked equal.
"""

from __future__ import annotations

import argparse
import collections
import json
import operator
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _corpus import lines
from ember import Context


def plain_count(path: str) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            counts.update(line.split())
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--words", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    corpus = lines(args.words // 10)
    words = sum(len(line.split()) for line in corpus)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "corpus.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(corpus) + "\n")

        plain_times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            expected = plain_count(path)
            plain_times.append(time.perf_counter() - t0)

        with Context(args.master, "rdd_wordcount") as sc:
            sc.parallelize([0], 1).count()  # workers up
            engine_times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                got = (
                    sc.textFile(path, sc.defaultParallelism)
                    .flatMap(str.split)
                    .map(lambda w: (w, 1))
                    .reduceByKey(operator.add)
                    .collect()
                )
                engine_times.append(time.perf_counter() - t0)
            if dict(got) != dict(expected):
                raise SystemExit("engine and plain counts differ")
            tiny = sc.parallelize([1], 1)
            lat = []
            for _ in range(200):
                t0 = time.perf_counter()
                tiny.count()
                lat.append(time.perf_counter() - t0)

    engine = words / min(engine_times)
    plain = words / min(plain_times)
    print(json.dumps({
        "benchmark": "rdd_wordcount",
        "master": args.master,
        "words": words,
        "engine_words_per_s": round(engine),
        "plain_counter_words_per_s": round(plain),
        "ratio": round(engine / plain, 3),
        "count_tiny_partition_median_ms": round(statistics.median(lat) * 1000, 3),
        "target": {"ratio": ">= 1.0", "count_tiny_partition_median_ms": "< 2"},
    }))


if __name__ == "__main__":
    main()
