"""Per-batch cost of ``mapWithState`` with a large state, and checkpoint write and recovery.

    python benchmarks/state_cost.py [--keys 1000000] [--small-keys 1000] [--updates 1000]

On local[2], ManualClock batches of 0.1 s. The first batch inserts every key of the state
(``--keys`` or ``--small-keys``); every later batch updates ``--updates`` distinct random
keys (data generated on the workers from the batch time, by a small pull source). The state
is checkpointed at the default interval: every 10 s, i.e. every 100 batches.

1. Per-batch time (wall time of ``advance_batches(ssc, 1)``: generating the batch, running
   its job, writing its metadata checkpoints) with the large and the small state, classified:
   ``plain`` batches, ``fold`` batches (the copy-on-write ``StateMap`` chain folded into one
   dict: every 20 batches since the last flattening), ``checkpoint`` batches (the state
   saved, its timeouts scanned and its chain flattened) and the batch right after one.
2. Checkpoint write: the checkpoint batch's time minus the median plain batch.
3. Recovery, in fresh processes: a first process runs the large state to its first
   checkpoint and dies (``os._exit``) right after; a second one times
   ``StreamingContext.getOrCreate`` and the first batch after the restart, and checks that
   batch's mapped values against a plain-Python recount.

Prints one JSON object. Targets: the median plain batch with the large state within 5x of
the small state's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from ember import Conf, Context
from ember.sources import PullSource
from ember.streaming import StateSpec, StreamingContext
from ember.testing import ManualClock, advance_batches

INTERVAL_MS = 100
CHECKPOINT_EVERY = 100  # batches: the default 10 s state checkpoint interval at 0.1 s
DELTA_CHAIN = 20  # ember.streaming._state._DELTA_CHAIN
PARTS = 8  # partitions of the first (inserting) batch


def batch_keys(k: int, keys: int, updates: int) -> list[int]:
    """The distinct keys updated by batch ``k`` (>= 2)."""
    return random.Random(k).sample(range(keys), min(updates, keys))


class UpdateSource(PullSource):
    """Batch 1: ``(key, 1)`` for every key; batch ``k >= 2``: ``(key, 1)`` for
    :func:`batch_keys` (generated on the workers; deterministic, so batches can be recomputed
    after a recovery)."""

    name = "state-cost"

    def __init__(self, keys: int, updates: int) -> None:
        self.keys = keys
        self.updates = updates

    def createStream(self, ssc: StreamingContext) -> Any:
        from ember.streaming._dstreams import PullInputDStream

        return PullInputDStream(ssc, self)

    def compute(self, ssc: StreamingContext, batch_time_ms: int) -> tuple[Any, int | None]:
        k = batch_time_ms // INTERVAL_MS
        keys, updates = self.keys, self.updates
        sc = ssc.sparkContext
        if k == 1:
            return (sc.parallelize(range(PARTS), PARTS)
                    .flatMap(lambda p: ((key, 1) for key in range(p, keys, PARTS))), keys)
        return (sc.parallelize([k], 1)
                .flatMap(lambda b: ((key, 1) for key in batch_keys(b, keys, updates))), updates)

    def describe(self) -> str:
        return f"state-cost source ({self.keys} keys, {self.updates} updates a batch)"


def count_up(key: int, value: int, state: Any) -> tuple[int, int]:
    """The mapping function: a running count per key."""
    total = (state.get() if state.exists() else 0) + value
    state.update(total)
    return (key, total)


def build(master: str, checkpoint_dir: str, keys: int, updates: int,
          out_file: str | None) -> StreamingContext:
    """A context running ``mapWithState(count_up)`` over an :class:`UpdateSource`.

    Each batch's output reduces the mapped records to ``(number, sum of values)``; with
    ``out_file`` it appends ``[batch time, number, sum]`` there as a JSON line.
    """
    conf = Conf().set("ember.streaming.clock", "manual")  # a recovered context keeps it
    sc = Context(master, "state_cost", conf)
    ssc = StreamingContext(sc, INTERVAL_MS / 1000, clock=ManualClock())
    ssc.checkpoint(checkpoint_dir)
    mapped = UpdateSource(keys, updates).createStream(ssc).mapWithState(
        StateSpec.function(count_up))

    def output(t: Any, rdd: Any) -> None:
        n, total = rdd.map(lambda kv: (1, kv[1])).reduce(lambda a, b: (a[0] + b[0],
                                                                        a[1] + b[1]))
        if out_file:
            with open(out_file, "a") as f:
                f.write(json.dumps([round(t.timestamp() * 1000), n, total]) + "\n")

    mapped.foreachRDD(output)
    return ssc


def batch_kinds(n: int) -> list[str]:
    """The kind of batches 1..n: ``first`` (inserts the keys), ``checkpoint``,
    ``after_checkpoint``, ``fold`` or ``plain`` — following ``_state.py``: a batch adds a
    layer to the state's chain, folding it first when it is ``DELTA_CHAIN`` deep; a
    checkpoint batch flattens it."""
    kinds, depth = [], 0
    for k in range(1, n + 1):
        fold = depth >= DELTA_CHAIN
        depth = 1 if fold else depth + 1
        if k == 1:
            kinds.append("first")
        elif k % CHECKPOINT_EVERY == 0:
            kinds.append("checkpoint")
        elif k % CHECKPOINT_EVERY == 1 and k > 1:
            kinds.append("after_checkpoint")
        else:
            kinds.append("fold" if fold else "plain")
        if k % CHECKPOINT_EVERY == 0:
            depth = 0
    return kinds


def summary(values: list[float]) -> dict[str, Any]:
    """Median, max and count (ms) of ``values``."""
    if not values:
        return {"n": 0}
    return {"median_ms": round(statistics.median(values), 1), "max_ms": round(max(values), 1),
            "n": len(values)}


def workers_rss_mb() -> float | None:
    """The resident memory of this process's children (the local workers), in MB."""
    try:
        import psutil
    except ImportError:
        return None
    children = psutil.Process().children(recursive=True)
    return round(sum(c.memory_info().rss for c in children) / 1e6, 1)


def per_batch(master: str, keys: int, updates: int, batches: int) -> dict[str, Any]:
    """Run ``batches`` batches over a state of ``keys`` keys; the per-batch times by kind."""
    with tempfile.TemporaryDirectory(prefix="ember-state-cost-") as d:
        ssc = build(master, d, keys, updates, None)
        times: list[float] = []
        try:
            ssc.start()
            for _ in range(batches):
                start = time.perf_counter()
                advance_batches(ssc, 1, timeout=600)
                times.append((time.perf_counter() - start) * 1000)
            ssc.awaitTerminationOrTimeout(0)
            rss = workers_rss_mb()
        finally:
            ssc.stop(stopSparkContext=True)
    kinds = batch_kinds(batches)
    by_kind = {kind: summary([t for t, k in zip(times, kinds, strict=True) if k == kind])
               for kind in ("plain", "fold", "checkpoint", "after_checkpoint")}
    steady = [t for t, k in zip(times, kinds, strict=True) if k != "first"]
    return {"state_keys": keys, "workers_rss_mb_at_end": rss,
            "first_batch_ms": round(times[0], 1),
            "all_but_first": summary(steady), **by_kind,
            "checkpoint_batches_ms": [round(t, 1) for t, k in zip(times, kinds, strict=True)
                                      if k == "checkpoint"]}


def expected_sum(k: int, keys: int, updates: int) -> int:
    """The sum of batch ``k``'s mapped values: each updated key's count after batch ``k``."""
    counts: dict[int, int] = {}
    for b in range(2, k + 1):
        for key in batch_keys(b, keys, updates):
            counts[key] = counts.get(key, 0) + 1
    return sum(1 + counts[key] for key in batch_keys(k, keys, updates))


def recovery(master: str, keys: int, updates: int) -> dict[str, Any]:
    """Run the crash and the recovery as two fresh processes; their figures."""
    with tempfile.TemporaryDirectory(prefix="ember-state-recovery-") as d:
        ckpt, out = os.path.join(d, "checkpoint"), os.path.join(d, "out.jsonl")
        common = [sys.executable, __file__, "--master", master, "--keys", str(keys),
                  "--updates", str(updates), "--dir", ckpt, "--out", out]
        crash = subprocess.run([*common, "--phase", "crash"], capture_output=True, text=True,
                               timeout=900)
        if crash.returncode != 0 or not crash.stdout.strip():
            raise SystemExit(f"the crashing run failed:\n{crash.stderr[-3000:]}")
        crashed = json.loads(crash.stdout.strip().splitlines()[-1])
        recover = subprocess.run([*common, "--phase", "recover"], capture_output=True,
                                 text=True, timeout=900)
        if recover.returncode != 0 or not recover.stdout.strip():
            raise SystemExit(f"the recovery failed:\n{recover.stderr[-3000:]}")
        recovered = json.loads(recover.stdout.strip().splitlines()[-1])
        with open(out) as f:
            lines = [json.loads(line) for line in f]
    t, n, total = lines[-1]
    k = t // INTERVAL_MS
    if k != CHECKPOINT_EVERY + 1 or n != updates or total != expected_sum(k, keys, updates):
        raise SystemExit(f"wrong batch after recovery: {lines[-1]} (expected batch "
                         f"{CHECKPOINT_EVERY + 1}, {updates} records, sum "
                         f"{expected_sum(k, keys, updates)})")
    return {**crashed, **recovered, "first_batch_after_restart_correct": True}


def make_setup(args: argparse.Namespace) -> Callable[[], StreamingContext]:
    """The ``setupFunc`` of ``getOrCreate`` (the same code in both processes, so the
    checkpoint's code fingerprint matches)."""

    def setup() -> StreamingContext:
        return build(args.master, args.dir, args.keys, args.updates, args.out)

    return setup


def phase_crash(args: argparse.Namespace) -> None:
    """Run to the first state checkpoint, print its batch's time, and die right after."""
    ssc = StreamingContext.getOrCreate(args.dir, make_setup(args))
    ssc.start()
    times = []
    for _ in range(CHECKPOINT_EVERY):
        start = time.perf_counter()
        advance_batches(ssc, 1, timeout=600)
        times.append((time.perf_counter() - start) * 1000)
    ssc.awaitTerminationOrTimeout(0)
    print(json.dumps({
        "checkpoint_batch_ms": round(times[-1], 1),
        "plain_batch_median_ms_before": round(statistics.median(times[1:-1]), 1),
        "checkpoint_files_mb": round(sum(
            os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.dir) for f in fs
        ) / 1e6, 1),
    }), flush=True)
    os._exit(0)  # the driver dies: no stop, no cleanup


def phase_recover(args: argparse.Namespace) -> None:
    """Recover from the checkpoint and run one batch; print the times."""
    start = time.perf_counter()
    ssc = StreamingContext.getOrCreate(args.dir, make_setup(args))
    got = time.perf_counter()
    if ssc._restored is None:
        raise SystemExit("no checkpoint was recovered")
    ssc.start()
    started = time.perf_counter()
    advance_batches(ssc, 1, timeout=600)
    done = time.perf_counter()
    ssc.awaitTerminationOrTimeout(0)
    ssc.stop(stopSparkContext=True)
    print(json.dumps({
        "recover_getOrCreate_ms": round((got - start) * 1000, 1),
        "recover_start_ms": round((started - got) * 1000, 1),
        "recover_first_batch_ms": round((done - started) * 1000, 1),
        "recover_total_ms": round((done - start) * 1000, 1),
    }), flush=True)


def main() -> None:
    """Parse the arguments and run the benchmark (or one of its recovery processes)."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1_000_000, help="keys in the large state")
    ap.add_argument("--small-keys", type=int, default=1000, help="keys in the small state")
    ap.add_argument("--updates", type=int, default=1000, help="keys updated a batch")
    ap.add_argument("--batches", type=int, default=210, help="batches timed per state size")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--skip-recovery", action="store_true")
    ap.add_argument("--phase", choices=["crash", "recover"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase == "crash":
        phase_crash(args)
        return
    if args.phase == "recover":
        phase_recover(args)
        return
    started = time.perf_counter()
    with Context(args.master, "state_cost-warmup") as sc:
        sc.parallelize(range(4), 2).count()  # start the pooled workers before timing
    small = per_batch(args.master, args.small_keys, args.updates, args.batches)
    print(f"small: {small}", file=sys.stderr)
    large = per_batch(args.master, args.keys, args.updates, args.batches)
    print(f"large: {large}", file=sys.stderr)
    result: dict[str, Any] = {
        "benchmark": "state_cost",
        "master": args.master,
        "interval_s": INTERVAL_MS / 1000,
        "updates_per_batch": args.updates,
        "checkpoint_every_batches": CHECKPOINT_EVERY,
        "small": small,
        "large": large,
        "plain_median_ratio": round(large["plain"]["median_ms"] / small["plain"]["median_ms"], 2),
        "all_but_first_median_ratio": round(
            large["all_but_first"]["median_ms"] / small["all_but_first"]["median_ms"], 2),
        "checkpoint_write_ms_estimate": round(
            statistics.median(large["checkpoint_batches_ms"]) - large["plain"]["median_ms"], 1)
        if large["checkpoint_batches_ms"] else None,
    }
    if not args.skip_recovery:
        result["recovery"] = recovery(args.master, args.keys, args.updates)
    result["target"] = {"plain_median_ratio": "< 5"}
    result["meets_target"] = result["plain_median_ratio"] < 5
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
