"""Per-slide cost of ``reduceByKeyAndWindow`` with and without an inverse function.

    python benchmarks/window_cost.py [--windows 10 100 1000] [--records 3000] [--keys 1000]

Batches of 0.1 s on a ManualClock (local[2]); each batch is ``--records`` ``(key, 1)`` pairs
over a ``--keys`` vocabulary, generated on the workers. For each window length (in batches)
and variant, the window is filled first, then each measured slide is timed as the wall time
of ``advance_batches(ssc, 1)`` (generating the batch and running its ``count()`` job) — the
manual clock makes ``BatchInfo.processingDelay`` zero, so wall time is the measure.

- with the inverse function, the warm-up runs every batch (the window is incremental: each
  needs the previous one);
- without it, warm-up batches run no job (the window's RDDs are lazy); the first measured
  slides then compute the window's batches once, and are dropped as warm-up too.

The last measured window of each run is checked (its values sum to the records in the
window). Prints one JSON object; the target: with the inverse function the median per-slide
time from the shortest to the longest window grows less than 2x.
"""

from __future__ import annotations

import argparse
import json
import operator
import statistics
import sys
import tempfile
import time
from typing import Any

from ember import Context
from ember.streaming import StreamingContext
from ember.testing import ManualClock, advance_batches

INTERVAL = 0.1


def make_batch(seed: int, records: int, keys: int) -> list[tuple[str, int]]:
    """``records`` pairs ``(key, 1)``; the keys depend on ``seed`` (runs on the workers)."""
    return [(f"k{(seed * 7919 + i * 31) % keys}", 1) for i in range(records)]


def run(sc: Context, window: int, inverse: bool, measured: int, records: int,
        keys: int) -> dict[str, Any]:
    """Fill a ``window``-batch window, then time ``measured`` slides; returns the figures."""
    extra_warmup = 0 if inverse else 2  # lazy warm-up: the first slides compute the window
    total = window + extra_warmup + measured
    half = records // 2
    ssc = StreamingContext(sc, INTERVAL, clock=ManualClock())
    checkpoints = tempfile.TemporaryDirectory(prefix="ember-window-cost-")
    state = {"active": inverse, "last": None, "check": False}

    def output(rdd: Any) -> None:
        if state["active"]:
            state["last"] = rdd.count()

    try:
        ssc.checkpoint(checkpoints.name)
        seeds = ssc.queueStream([[2 * b, 2 * b + 1] for b in range(total)])
        pairs = seeds.flatMap(lambda seed: make_batch(seed, half, keys))
        windowed = pairs.reduceByKeyAndWindow(operator.add, operator.sub if inverse else None,
                                              window * INTERVAL, INTERVAL)
        windowed.foreachRDD(output)
        last_window: list = []
        windowed.foreachRDD(lambda rdd: last_window.append(rdd) if state["check"] else None)
        ssc.start()
        advance_batches(ssc, window, timeout=600)
        state["active"] = True
        times = []
        for i in range(extra_warmup + measured):
            state["check"] = i == extra_warmup + measured - 1
            start = time.perf_counter()
            advance_batches(ssc, 1, timeout=600)
            times.append((time.perf_counter() - start) * 1000)
        ssc.awaitTerminationOrTimeout(0)
        values = dict(last_window[-1].collect())
    finally:
        ssc.stop(stopSparkContext=False)
        checkpoints.cleanup()
    # the last window holds `window` whole batches: its values sum to window * records
    total_in_window = sum(values.values())
    if total_in_window != window * 2 * half:
        raise SystemExit(f"wrong window: sum {total_in_window}, expected {window * 2 * half}")
    slides = times[extra_warmup:]
    return {
        "median_ms": round(statistics.median(slides), 2),
        "p90_ms": round(sorted(slides)[int(0.9 * (len(slides) - 1))], 2),
        "max_ms": round(max(slides), 2),
        "slides": len(slides),
    }


def main() -> None:
    """Parse the arguments, run every window length and variant, print the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, nargs="+", default=[10, 100, 1000],
                    help="window lengths, in batches")
    ap.add_argument("--records", type=int, default=3000, help="records per batch")
    ap.add_argument("--keys", type=int, default=1000, help="key vocabulary")
    ap.add_argument("--measured", type=int, default=30, help="slides timed (with inverse)")
    ap.add_argument("--measured-recompute", type=int, default=8,
                    help="slides timed without the inverse function")
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "window_cost",
        "master": args.master,
        "interval_s": INTERVAL,
        "records_per_batch": args.records,
        "keys": args.keys,
        "with_inverse": {},
        "without_inverse": {},
    }
    with Context(args.master, "window_cost") as sc:
        sc.parallelize([0], 2).count()  # start the workers
        for window in args.windows:
            result["with_inverse"][str(window)] = run(
                sc, window, True, args.measured, args.records, args.keys)
            print(f"window {window} with inverse: {result['with_inverse'][str(window)]}",
                  file=sys.stderr)
            result["without_inverse"][str(window)] = run(
                sc, window, False, args.measured_recompute, args.records, args.keys)
            print(f"window {window} without inverse: "
                  f"{result['without_inverse'][str(window)]}", file=sys.stderr)
    lo, hi = str(min(args.windows)), str(max(args.windows))
    inv_growth = result["with_inverse"][hi]["median_ms"] / result["with_inverse"][lo]["median_ms"]
    rec_growth = (result["without_inverse"][hi]["median_ms"]
                  / result["without_inverse"][lo]["median_ms"])
    result["with_inverse_growth"] = round(inv_growth, 2)
    result["without_inverse_growth"] = round(rec_growth, 2)
    result["target"] = {"with_inverse_growth": "< 2"}
    result["meets_target"] = inv_growth < 2
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
