"""The quick example's network word count, end to end, against a plain-Python socket loop.

    python benchmarks/socket_wordcount.py [--lines 1000000] [--master local[2]] [--repeat 1]

A seeded corpus (``_corpus.lines``: 10 words a line, 50k-word Zipf vocabulary) is written
to a temporary file by a separate process, which also counts its words. Then, each in its
own fresh process tree:

- **ember**, backpressure off and on: a feeder *process* serves the corpus on a 127.0.0.1
  port with ``sendfile`` — as fast as it is read, so faster than the processing — and the
  guide's quick example (``socketTextStream`` → ``flatMap(split " ")`` → ``map`` →
  ``reduceByKey``, 1 s batches, ``local[2]``) counts it; the counts of every batch are
  merged on the driver and checked *exactly* against the corpus counts. Time: from the
  feeder's first byte to the end of the batch that completed the count.
- **plain**: one Python process reads the same kind of feeder into a
  ``collections.Counter`` (``for line in sock.makefile(): counts.update(line.split(" "))``),
  timed from first byte to end of stream, also checked exactly.

Backpressure starts, as in Spark, with no limit on the first batch
(``spark.streaming.backpressure.initialRate`` unset); ``--initial-rate N`` sets one. Ember's
time ends at a 1 s batch boundary, so with a short corpus the ratio swings with where the
boundaries fall; ``--lines 3000000`` gives steadier figures.

Memory is sampled with psutil over the process tree of what is measured — ember's driver and
its worker processes; or the plain reader — *without the feeder*, which is the benchmark's
harness (the same small process in both cases; its own peak is reported beside, as
``feeder_peak_rss_mb``): ``peak_rss_mb`` is the peak of the *sum* of the resident set sizes
(every process counts the interpreter's shared pages again), ``peak_pss_mb`` the peak of the
sum of the proportional set sizes (shared pages divided among their sharers: the tree's real
footprint). ``peak_shm_files_mb`` is the peak size of the files ember keeps in its
memory-backed directory under ``/dev/shm`` (small shuffle outputs): RAM that no process's RSS
shows, so it is reported beside the tree's figures (sampled every 200 ms).
``idle_tree_*`` is the same tree before the stream starts. ``spilled_mb`` is how
much received data ember wrote to its local directory rather than keep in memory
(``ember.streaming.receiver.spillThreshold``; that directory is on disk, not in ``/dev/shm``,
unless ``ember.local.dir`` says otherwise). ``receiver_only`` is the driver's share alone:
the socket receiver reading the corpus with nothing behind it. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


# --------------------------------------------------------------------------- corpus
def iter_lines(num_lines: int, words_per_line: int = 10, vocab_size: int = 50_000,
               seed: int = 11, chunk: int = 50_000):
    """The lines of ``_corpus.lines(num_lines)``, generated ``chunk`` lines at a time.

    ``random.choices`` draws one ``random()`` per pick, so drawing the picks in chunks from
    the same generator gives exactly the corpus of one big draw, without holding it all.
    """
    import itertools
    import random

    from _corpus import vocabulary

    rng = random.Random(seed)
    vocab = vocabulary(vocab_size)
    cum = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(vocab))))
    done = 0
    while done < num_lines:
        n = min(chunk, num_lines - done)
        picks = rng.choices(vocab, cum_weights=cum, k=n * words_per_line)
        for i in range(0, len(picks), words_per_line):
            yield " ".join(picks[i : i + words_per_line])
        done += n


def prepare(num_lines: int, path: str) -> None:
    """Write the corpus to ``path`` and its word counts to ``path + '.counts'``."""
    from _corpus import lines

    sample = list(iter_lines(2_000, chunk=300))
    if sample != lines(2_000):
        raise SystemExit("iter_lines differs from _corpus.lines: the corpus would not be the same")
    counts: collections.Counter = collections.Counter()
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        batch: list[str] = []
        for line in iter_lines(num_lines):
            batch.append(line)
            if len(batch) == 10_000:
                counts.update(" ".join(batch).split(" "))
                f.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            counts.update(" ".join(batch).split(" "))
            f.write("\n".join(batch) + "\n")
    with open(path + ".counts", "wb") as f:
        pickle.dump({"lines": num_lines, "counts": dict(counts)}, f)


# --------------------------------------------------------------------------- feeder
#: The feeder process: serves the file to one client with sendfile (as fast as the client
#: reads); prints its port, then the time of its first byte. Only the standard library's
#: socket, so that the process is small.
FEEDER = """
import socket, sys, time
srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
srv.close()
with open(sys.argv[1], "rb") as f, conn:
    print(repr(time.time()), flush=True)
    conn.sendfile(f)
    conn.shutdown(socket.SHUT_WR)
    conn.recv(1)  # wait until the client is done before the process ends
"""


def start_feeder(path: str) -> tuple[subprocess.Popen, int]:
    """Start a feeder process serving ``path``; returns it and its port."""
    proc = subprocess.Popen([sys.executable, "-S", "-c", FEEDER, path],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, port


def first_byte_time(proc: subprocess.Popen) -> float:
    assert proc.stdout is not None
    return float(proc.stdout.readline())


# --------------------------------------------------------------------------- memory
def _label(proc: Any) -> str:
    """A short name for a process of the benchmark's tree."""
    try:
        cmd = " ".join(proc.cmdline())
    except Exception:
        return "gone"
    for needle, label in (("conn.sendfile", "feeder"), ("--plain-reader", "plain-reader"),
                          ("--child", "driver"), ("popen_loky_posix", "worker"),
                          ("worker_entry", "worker"),
                          ("loky.backend.resource_tracker", "loky-resource-tracker"),
                          ("multiprocessing.resource_tracker", "mp-resource-tracker")):
        if needle in cmd:
            return label
    return "other"


def _dir_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


class TreeSampler:
    """Samples the memory of some processes and all their descendants, in a thread.

    The summed RSS every 20 ms, the summed PSS (each shared page divided among the processes
    sharing it, so the interpreter's pages count once) every 200 ms; the list of
    descendants is refreshed every 0.5 s (listing them scans /proc and costs milliseconds).
    """

    def __init__(self, roots: list[int], interval: float = 0.02,
                 exclude: tuple[int, ...] = (), dirs: tuple[str, ...] = ()) -> None:
        import psutil

        self._psutil = psutil
        self.roots = [psutil.Process(pid) for pid in roots]
        self.exclude = set(exclude)  # processes (with their descendants) left out
        self.dirs = dirs  # memory-backed directories (tmpfs): their files are RAM too
        self.peak_dirs = 0
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self.peak_by_process: dict[str, float] = {}
        self._labels: dict[int, str] = {}
        self._procs: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _refresh(self) -> None:
        procs: dict[int, Any] = {}
        for root in self.roots:
            try:
                for p in [root, *root.children(recursive=True)]:
                    procs[p.pid] = p
            except self._psutil.Error:
                continue
        for pid in list(procs):
            try:
                if pid in self.exclude or any(a.pid in self.exclude
                                              for a in procs[pid].parents()):
                    del procs[pid]
            except self._psutil.Error:
                del procs[pid]
        self._procs = list(procs.values())
        for p in self._procs:
            if p.pid not in self._labels:
                self._labels[p.pid] = f"{_label(p)} {p.pid}"

    def _record(self, pss: bool) -> None:
        rss_total = pss_total = 0
        for p in self._procs:
            try:
                if pss:
                    mem = p.memory_full_info()
                    pss_total += mem.pss
                else:
                    mem = p.memory_info()
            except self._psutil.Error:
                continue
            rss_total += mem.rss
            label = self._labels.get(p.pid, str(p.pid))
            mb = round(mem.rss / 2**20, 1)
            if mb > self.peak_by_process.get(label, 0):
                self.peak_by_process[label] = mb
        self.peak = max(self.peak, rss_total)
        if pss:
            self.peak_pss = max(self.peak_pss, pss_total)
            if self.dirs:
                self.peak_dirs = max(self.peak_dirs, sum(_dir_bytes(d) for d in self.dirs))

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(self.interval):
            tick += 1
            if tick % 25 == 0:
                self._refresh()
            self._record(pss=tick % 10 == 0)

    def __enter__(self) -> TreeSampler:
        self._refresh()
        self._record(pss=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._record(pss=True)


# --------------------------------------------------------------------------- ember
def tree_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process and by its children."""
    import psutil

    me = psutil.Process()
    own = sum(me.cpu_times()[:2])
    children = 0.0
    for p in me.children(recursive=True):
        try:
            children += sum(p.cpu_times()[:2])
        except psutil.Error:
            pass
    return {"driver": own, "children": children}


def run_ember(path: str, master: str, backpressure: bool, block_interval: str,
              initial_rate: int) -> dict:
    import operator

    from ember.pyspark import SparkConf, SparkContext
    from ember.pyspark.streaming import StreamingContext
    from ember.pyspark.streaming.listener import StreamingListener

    with open(path + ".counts", "rb") as f:
        expected = pickle.load(f)
    total_lines = expected["lines"]
    conf = (SparkConf()
            .set("spark.streaming.backpressure.enabled", "true" if backpressure else "false")
            .set("spark.streaming.blockInterval", block_interval))
    if backpressure and initial_rate:
        conf.set("spark.streaming.backpressure.initialRate", str(initial_rate))
    sc = SparkContext(master, "socket_wordcount", conf=conf)
    sc.parallelize(range(4), 2).count()  # workers up before the clock starts
    idle = TreeSampler([os.getpid()])
    idle.__enter__()
    idle.__exit__()
    ssc = StreamingContext(sc, 1)
    counts: collections.Counter = collections.Counter()
    done = threading.Event()
    state = {"lines": 0, "batches": 0, "end": 0.0, "max_sched_ms": 0, "max_batch_lines": 0}

    class Progress(StreamingListener):
        def onBatchCompleted(self, batchCompleted: Any) -> None:
            info = batchCompleted.batchInfo()
            n = info.numRecords()
            if n:
                state["batches"] += 1
                state["lines"] += n
                state["max_batch_lines"] = max(state["max_batch_lines"], n)
                state["max_sched_ms"] = max(state["max_sched_ms"], info.schedulingDelay() or 0)
            if state["lines"] >= total_lines and not done.is_set():
                state["end"] = time.time()
                done.set()

    ssc.addStreamingListener(Progress())
    feeder_proc, port = start_feeder(path)
    lines = ssc.socketTextStream("127.0.0.1", port, restartDelay=600.0, maxRestartDelay=600.0)
    (lines.flatMap(lambda line: line.split(" "))
          .map(lambda word: (word, 1))
          .reduceByKey(operator.add)
          .foreachRDD(lambda rdd: counts.update(dict(rdd.collect()))))
    shm = getattr(sc, "_memory_dir", None)
    shm_dirs = (shm,) if shm and shm.startswith("/dev/shm") else ()
    with TreeSampler([os.getpid()], exclude=(feeder_proc.pid,), dirs=shm_dirs) as mem, \
            TreeSampler([feeder_proc.pid]) as feeder_mem:
        ssc.start()
        start = first_byte_time(feeder_proc)
        cpu0 = tree_cpu_seconds()
        finished = done.wait(600)
        cpu1 = tree_cpu_seconds()
    tracker = getattr(ssc._scheduler, "tracker", None)
    spilled = getattr(tracker, "bytes_spilled_total", 0)
    ssc.stop(stopSparkContext=True, stopGraceFully=False)
    feeder_proc.wait(30)
    if not finished:
        raise SystemExit(f"ember run did not finish: {state}")
    ok = state["lines"] == total_lines and counts == collections.Counter(expected["counts"])
    seconds = state["end"] - start
    return {
        "lines": state["lines"],
        "seconds": round(seconds, 3),
        "lines_per_s": round(total_lines / seconds),
        "peak_rss_mb": round(mem.peak / 2**20, 1),
        "peak_pss_mb": round(mem.peak_pss / 2**20, 1),
        "peak_rss_mb_by_process": mem.peak_by_process,
        "feeder_peak_rss_mb": round(feeder_mem.peak / 2**20, 1),
        "peak_shm_files_mb": round(mem.peak_dirs / 2**20, 1),
        "spilled_mb": round(spilled / 2**20, 1),
        "idle_tree_rss_mb": round(idle.peak / 2**20, 1),
        "idle_tree_pss_mb": round(idle.peak_pss / 2**20, 1),
        "cpu_s_driver": round(cpu1["driver"] - cpu0["driver"], 2),
        "cpu_s_workers_and_feeder": round(cpu1["children"] - cpu0["children"], 2),
        "batches_with_data": state["batches"],
        "max_batch_lines": state["max_batch_lines"],
        "max_scheduling_delay_s": round(state["max_sched_ms"] / 1000, 3),
        "counts_exact": ok,
    }


# --------------------------------------------------------------------------- plain
def plain_reader(port: int, path: str) -> None:
    """The plain loop: read the socket's lines into a Counter; print a JSON result."""
    counts: collections.Counter = collections.Counter()
    with socket.create_connection(("127.0.0.1", port)) as sock, \
            sock.makefile("r", encoding="utf-8", newline="\n") as f:
        for line in f:
            counts.update(line.rstrip("\n").split(" "))
    end = time.time()
    with open(path + ".counts", "rb") as fh:
        expected = pickle.load(fh)
    print(json.dumps({"end": end, "counts_exact": counts == collections.Counter(expected["counts"])}))


def run_plain(path: str) -> dict:
    with open(path + ".counts", "rb") as f:
        total_lines = pickle.load(f)["lines"]
    feeder_proc, port = start_feeder(path)
    reader = subprocess.Popen([sys.executable, __file__, "--plain-reader", str(port), path],
                              stdout=subprocess.PIPE, text=True)
    with TreeSampler([reader.pid]) as mem, TreeSampler([feeder_proc.pid]) as feeder_mem:
        start = first_byte_time(feeder_proc)
        out, _ = reader.communicate(timeout=600)
    feeder_proc.wait(30)
    result = json.loads(out)
    seconds = result["end"] - start
    return {
        "lines": total_lines,
        "seconds": round(seconds, 3),
        "lines_per_s": round(total_lines / seconds),
        "peak_rss_mb": round(mem.peak / 2**20, 1),
        "peak_pss_mb": round(mem.peak_pss / 2**20, 1),
        "feeder_peak_rss_mb": round(feeder_mem.peak / 2**20, 1),
        "counts_exact": result["counts_exact"],
    }


# --------------------------------------------------------------------------- receiver
def run_receiver_only(path: str) -> dict:
    """The driver's share alone: the socket receiver reading the corpus, its ``storeBytes``
    replaced by a newline count (no block, no batch). CPU per line includes the kernel's."""
    import resource

    from ember_socket import SocketSource, SocketTextReceiver

    class CountingReceiver(SocketTextReceiver):
        def __init__(self, source: SocketSource) -> None:
            super().__init__(source)
            self.lines = self.bytes = 0
            self.done = threading.Event()

        def storeBytes(self, data: bytes) -> None:
            self.lines += data.count(b"\n") + (not data.endswith(b"\n"))
            self.bytes += len(data)

        def restart(self, message: str, error: BaseException | None = None,
                    delay: float | None = None) -> None:
            self.done.set()  # the end of the stream

        def reportError(self, message: str, error: BaseException | None = None) -> None:
            raise SystemExit(f"receiver error: {message}")

        def isStopped(self) -> bool:
            return self.done.is_set()

    feeder_proc, port = start_feeder(path)
    receiver = CountingReceiver(SocketSource("127.0.0.1", port))
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    receiver.onStart()
    receiver.done.wait(600)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    receiver.onStop()
    feeder_proc.wait(30)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "lines": receiver.lines,
        "lines_per_s": round(receiver.lines / seconds),
        "mib_per_s": round(receiver.bytes / seconds / 2**20),
        "cpu_ns_per_line": round(cpu / max(receiver.lines, 1) * 1e9),
    }


# --------------------------------------------------------------------------- main
def child(kind: str, path: str, args: argparse.Namespace) -> dict:
    """Run one measurement in a fresh process (so each has its own memory)."""
    cmd = [sys.executable, __file__, "--child", kind, path, "--master", args.master,
           "--block-interval", args.block_interval, "--initial-rate", str(args.initial_rate)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, timeout=900).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--block-interval", default="200ms")
    ap.add_argument("--initial-rate", type=int, default=0,
                    help="backpressure's rate (lines/s) for the first batch, before it has "
                         "measured anything (spark.streaming.backpressure.initialRate); 0 "
                         "leaves it unset, Spark's default: the first batch is not limited")
    ap.add_argument("--only", choices=["plain", "ember", "ember-backpressure"], action="append",
                    help="measure only these cases (repeatable)")
    ap.add_argument("--repeat", type=int, default=1, help="measure each case this many times")
    ap.add_argument("--plain-reader", nargs=2, metavar=("PORT", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.plain_reader:
        return plain_reader(int(args.plain_reader[0]), args.plain_reader[1])
    if args.child:
        kind, path = args.child
        if kind == "plain":
            result = run_plain(path)
        elif kind == "receiver":
            result = run_receiver_only(path)
        else:
            result = run_ember(path, args.master, kind == "ember-backpressure",
                               args.block_interval, args.initial_rate)
        print(json.dumps(result))
        return None

    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="ember-socket-bench-") as tmp:
        path = os.path.join(tmp, "corpus.txt")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c",
                        f"import sys; sys.path.insert(0, {HERE!r}); import socket_wordcount as b; "
                        f"b.prepare({args.lines}, {path!r})"], check=True)
        prepare_s = time.perf_counter() - t0
        corpus_bytes = os.path.getsize(path)
        receiver_only = child("receiver", path, args)
        kinds = args.only or ["plain", "ember", "ember-backpressure"]
        runs: dict[str, list[dict]] = {k: [] for k in kinds}
        for _ in range(args.repeat):
            for kind in kinds:  # interleaved, so a busy moment of the machine hits every case
                runs[kind].append(child(kind, path, args))

    def best(kind: str) -> dict | None:
        return max(runs[kind], key=lambda r: r["lines_per_s"]) if runs.get(kind) else None

    def median(kind: str) -> int | None:
        values = sorted(r["lines_per_s"] for r in runs.get(kind, []))
        return values[len(values) // 2] if values else None

    plain = best("plain")
    report: dict[str, Any] = {
        "benchmark": "socket_wordcount",
        "master": args.master,
        "lines": args.lines,
        "words_per_line": 10,
        "vocabulary": 50_000,
        "batch_interval_s": 1.0,
        "block_interval": args.block_interval,
        "backpressure_initial_rate": args.initial_rate,
        "corpus_bytes": corpus_bytes,
        "prepare_s": round(prepare_s, 1),
        "runs_per_case": args.repeat,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "plain_counter": plain,
        "ember_backpressure_off": best("ember"),
        "ember_backpressure_on": best("ember-backpressure"),
        "receiver_only": receiver_only,
    }
    for kind, label in (("ember", "off"), ("ember-backpressure", "on")):
        ours = best(kind)
        if ours and plain:
            report[f"ratio_backpressure_{label}_best"] = round(
                ours["lines_per_s"] / plain["lines_per_s"], 3)
            report[f"ratio_backpressure_{label}_median"] = round(
                (median(kind) or 0) / (median("plain") or 1), 3)
    report["all_runs"] = {
        k: [{m: r[m] for m in ("lines_per_s", "peak_rss_mb", "peak_pss_mb")} for r in v]
        for k, v in runs.items()
    }
    report["target"] = {"ratio": ">= 1.0", "peak_memory_mb": "< 150"}
    for kind, label in (("ember", "off"), ("ember-backpressure", "on")):
        ours = best(kind)
        if ours and plain:
            report[f"target_met_backpressure_{label}"] = {
                "ratio": ours["lines_per_s"] >= plain["lines_per_s"],
                "peak_rss_mb": min(r["peak_rss_mb"] for r in runs[kind]) < 150,
                "peak_pss_mb": min(r["peak_pss_mb"] for r in runs[kind]) < 150,
            }
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report))
    return None


if __name__ == "__main__":
    main()
