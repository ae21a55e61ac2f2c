"""What the monitoring UI (ember-ui) costs a streaming word count: words/s with it on and off.

    python benchmarks/ui_overhead.py [--batches 30] [--lines 20000] [--pairs 3]

queueStream batches of ``--lines`` lines (10 words a line, 50k-word Zipf vocabulary) through
flatMap → map → reduceByKey → foreachRDD(collect) at local[2]; a ManualClock is moved past
every batch at once, so batches run back to back as fast as the engine goes, and the time is
from that move to the end of the last batch. Each run has its own Context with
``ember.ui.enabled`` on or off; runs alternate in ABBA order (on, off, off, on, ...) so that
drift on a shared machine hits both sides alike. While a UI-on run goes, a client polls the
statistics API every second and reads the server-sent event stream (which the server
updates at most twice a second); the client is a process of its own, as a browser would be. Prints one JSON object: words/s of every run, the medians,
and their ratio (the target is UI-on >= 0.97 x UI-off), the same for the best runs, and the
ratios of the on/off pairs that ran next to each other (less sensitive to load that comes
and goes on a shared machine), the CPU seconds the driver process itself (every thread: scheduler,
hooks, the UI's server; not the workers) used in each run, and those of the UI's server
thread alone (Linux) with their share of the UI-on runs' time. Totals are checked every run.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _corpus import lines as make_lines
from _wordcount_stream import word_count_stream
from ember import Conf, Context
from ember.streaming import StreamingContext
from ember.testing import ManualClock


def client_main(base: str, app_id: str) -> None:
    """The client, in a process of its own like a browser: polls the statistics API every
    second and reads the event stream until stdin closes; prints its counts as JSON."""
    stats_url = f"{base}/api/v1/applications/{app_id}/streaming/statistics"
    stop = threading.Event()
    counts = {"polls": 0, "events": 0, "errors": []}

    def poll() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(stats_url, timeout=10) as r:
                    json.loads(r.read())
                counts["polls"] += 1
            except Exception as exc:  # reported in the output, never hidden
                counts["errors"].append(f"poll: {exc}")
            stop.wait(1.0)

    def events() -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]),
                                              timeout=60)
            conn.request("GET", "/streaming/events")
            resp = conn.getresponse()
            while not stop.is_set():
                line = resp.fp.readline()
                if not line:
                    break
                if line.startswith(b"data: "):
                    json.loads(line[6:])
                    counts["events"] += 1
        except Exception as exc:
            if not stop.is_set():
                counts["errors"].append(f"events: {exc}")

    threads = [threading.Thread(target=poll, daemon=True),
               threading.Thread(target=events, daemon=True)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    stop.set()
    threads[0].join(10)
    print(json.dumps(counts), flush=True)


class Client:
    """Runs :func:`client_main` in a child process."""

    def __init__(self, base: str, app_id: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--client", base, app_id],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("the benchmark's HTTP client did not start")

    def close(self) -> dict:
        out, _ = self.proc.communicate(timeout=30)
        return json.loads(out.strip().splitlines()[-1])


def ui_server_cpu() -> float:
    """CPU seconds used so far by the UI's server thread (0 without it, or off Linux)."""
    for t in threading.enumerate():
        if t.name == "ember-ui-server" and t.ident is not None:
            try:
                return time.clock_gettime(time.pthread_getcpuclockid(t.ident))
            except (AttributeError, OSError):
                return 0.0
    return 0.0


def run_once(batches: list[list[str]], ui: bool, expected: collections.Counter) -> dict:
    conf = Conf().set("ember.ui.enabled", ui).set("ember.ui.port", 0)
    sc = Context("local[2]", "ui_overhead", conf)
    client = None
    counts: dict = {}
    try:
        sc.parallelize([0], 2).count()
        clock = ManualClock()
        ssc = StreamingContext(sc, 1.0, clock=clock)
        total = word_count_stream(ssc, batches)
        ssc.start()
        if ui:
            import ember_ui

            handle = ember_ui.current_ui()
            if handle is None or handle.base_url is None:
                raise SystemExit("the UI did not start: is ember-ui installed?")
            client = Client(handle.base_url, handle.settings.app_id)
            time.sleep(1.5)  # the client is connected and has polled before the batches run
        server_cpu0 = ui_server_cpu()
        t0, cpu0 = time.perf_counter(), time.process_time()
        clock.advance(len(batches) * 1.0)
        ssc._await_batch(len(batches) * 1000, timeout=600)
        seconds = time.perf_counter() - t0
        driver_cpu = time.process_time() - cpu0
        server_cpu = ui_server_cpu() - server_cpu0 if ui else 0.0
        counts = client.close() if client is not None else {}
        client = None
        ssc.stop(stopSparkContext=False)
    finally:
        if client is not None:
            client.close()
        sc.stop()
    if total != expected:
        raise SystemExit("the streaming counts differ from the expected counts")
    return {"seconds": seconds, "driver_cpu": driver_cpu, "server_cpu": server_cpu, **counts}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--client":
        client_main(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--pairs", type=int, default=3, help="on/off pairs, run in ABBA order")
    args = ap.parse_args()
    corpus = make_lines(args.lines * args.batches)
    batches = [corpus[i * args.lines: (i + 1) * args.lines] for i in range(args.batches)]
    words = sum(len(line.split()) for line in corpus)
    expected: collections.Counter = collections.Counter()
    for line in corpus:
        expected.update(line.split())

    warm = collections.Counter(w for line in corpus[: 2 * args.lines] for w in line.split())
    for ui in (True, False):  # warm-up: worker processes, and the UI's imports
        run_once(batches[:2], ui, warm)
    order = []
    for i in range(args.pairs):
        order += [True, False] if i % 2 == 0 else [False, True]
    on: list[float] = []
    off: list[float] = []
    cpu: dict[bool, list[float]] = {True: [], False: []}
    server_cpu: list[float] = []
    polls = events = 0
    errors: list[str] = []
    for ui in order:
        r = run_once(batches, ui, expected)
        rate = words / r["seconds"]
        (on if ui else off).append(rate)
        cpu[ui].append(r["driver_cpu"])
        if ui:
            server_cpu.append(r["server_cpu"])
        polls += r.get("polls", 0)
        events += r.get("events", 0)
        errors += r.get("errors", [])
    median_on, median_off = statistics.median(on), statistics.median(off)
    # Runs i*2 and i*2+1 are neighbours in time (ABBA), so their ratio cancels slow drift.
    paired = [on[i] / off[i] for i in range(args.pairs)]
    print(json.dumps({
        "benchmark": "ui_overhead",
        "master": "local[2]",
        "batches": args.batches,
        "lines_per_batch": args.lines,
        "words_per_run": words,
        "order": ["on" if u else "off" for u in order],
        "ui_on_words_per_s": [round(x) for x in on],
        "ui_off_words_per_s": [round(x) for x in off],
        "median_on_words_per_s": round(median_on),
        "median_off_words_per_s": round(median_off),
        "ratio": round(median_on / median_off, 3),
        "best_on_words_per_s": round(max(on)),
        "best_off_words_per_s": round(max(off)),
        "best_ratio": round(max(on) / max(off), 3),
        "paired_ratios": [round(r, 3) for r in paired],
        "driver_cpu_s_on": [round(x, 3) for x in cpu[True]],
        "driver_cpu_s_off": [round(x, 3) for x in cpu[False]],
        "ui_server_thread_cpu_s": [round(x, 3) for x in server_cpu],
        "ui_server_cpu_share": round(sum(server_cpu) / sum(words / x for x in on), 4),
        "median_paired_ratio": round(statistics.median(paired), 3),
        "client_polls": polls,
        "client_events": events,
        "client_errors": errors,
        "target": {"ratio": ">= 0.97"},
    }))


if __name__ == "__main__":
    main()
