"""Streaming word count on local[2] and on Dask with one and with two workers, same run.

    python benchmarks/dask_scaling.py [--batches 8] [--lines 100000] [--repeat 3]

queueStream batches of ``--lines`` lines (10 words a line, 50k-word Zipf vocabulary, see
``_corpus.py``) through flatMap → map → reduceByKey → foreachRDD(collect). The clock is a
ManualClock moved past every batch at once, so the batches run back to back; the time is from
the first batch's submission to the last batch's end. Each master runs ``--repeat`` times,
the masters taking turns (a new Context each time, after one warm-up batch), and its best run
counts; every run's counts are checked against a plain ``collections.Counter``.

The Dask clusters are ``dask-local[1]`` and ``dask-local[2]``: a ``dask scheduler`` process and
N ``dask worker`` processes (one thread each) on 127.0.0.1, started by ember-dask. Prints one
JSON object: words/s for each master, the two ratios and whether they reach their targets
(Dask with 2 workers >= 1.6x Dask with 1 worker, and >= 0.7x local[2]), plus the CPU
seconds each run cost (the driver and every process it started) and the machine's load
average, without which figures from a shared 2-core machine cannot be read: when other
processes keep the cores busy, two workers cannot run twice as fast as one.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _corpus import lines as make_lines
from _wordcount_stream import run_word_count
from ember import Context


def run_once(sc: Context, batches: list[list[str]], expected: collections.Counter) -> float:
    """One streaming run over ``batches``; returns its seconds."""
    seconds, total = run_word_count(sc, batches)
    if total != expected:
        raise SystemExit(f"{sc.master}: streaming and plain counts differ")
    return seconds


def cpu_seconds() -> float:
    """CPU time used so far by this process and every process it started (the local
    workers, the Dask scheduler and workers): what the run cost the machine."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def measure(master: str, batches: list[list[str]],
            expected: collections.Counter) -> tuple[float, float]:
    """Seconds and CPU seconds of one run on ``master``, in a new context, after one
    warm-up batch."""
    with Context(master, "dask_scaling") as sc:
        run_once(sc, batches[:1], collections.Counter(w for line in batches[0]
                                                      for w in line.split()))
        cpu = cpu_seconds()
        seconds = run_once(sc, batches, expected)
        return seconds, cpu_seconds() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    corpus = make_lines(args.lines * args.batches)
    batches = [corpus[i * args.lines : (i + 1) * args.lines] for i in range(args.batches)]
    words = sum(len(line.split()) for line in corpus)
    expected: collections.Counter = collections.Counter()
    for line in corpus:
        expected.update(line.split())

    masters = {"local[2]": "local[2]", "dask_1_worker": "dask-local[1]",
               "dask_2_workers": "dask-local[2]"}
    runs: dict[str, list[float]] = {name: [] for name in masters}
    cpu: dict[str, list[float]] = {name: [] for name in masters}
    load_before = os.getloadavg()[0]
    for _ in range(args.repeat):  # interleaved, so a busy moment hurts every master alike
        for name, master in masters.items():
            seconds, cpu_s = measure(master, batches, expected)
            runs[name].append(seconds)
            cpu[name].append(cpu_s)
    rate = {name: round(words / min(times)) for name, times in runs.items()}
    scaling = rate["dask_2_workers"] / rate["dask_1_worker"]
    vs_local = rate["dask_2_workers"] / rate["local[2]"]
    print(json.dumps({
        "benchmark": "dask_scaling",
        "batches": args.batches,
        "lines_per_batch": args.lines,
        "words": words,
        "cpus": os.cpu_count(),
        "words_per_s": rate,
        "seconds": {name: [round(t, 3) for t in times] for name, times in runs.items()},
        "median_words_per_s": {name: round(words / statistics.median(times))
                               for name, times in runs.items()},
        "cpu_seconds": {name: [round(c, 2) for c in cs] for name, cs in cpu.items()},
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "dask_2_over_1": round(scaling, 3),
        "dask_2_over_local_2": round(vs_local, 3),
        "target": {"dask_2_over_1": ">= 1.6", "dask_2_over_local_2": ">= 0.7"},
        "meets_target": scaling >= 1.6 and vs_local >= 0.7,
    }))


if __name__ == "__main__":
    main()
