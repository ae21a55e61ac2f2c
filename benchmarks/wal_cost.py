"""What the write-ahead log costs: socket ingestion with it off and on, and recovery time.

    python benchmarks/wal_cost.py [--lines 10000000] [--master local[2]] [--repeat 3]
                                  [--recovery-rate 50000] [--recovery-seconds 60]

**Ingestion.** A feeder *process* serves a file of ``--lines`` text lines (about 60 bytes
each) on a 127.0.0.1 port with ``sendfile``, as fast as it is read; one socket receiver
(``ssc.socketTextStream``, the ``ember-socket`` plugin) reads it into a stream of 1 s
batches that counts its lines (``count()``, on ``--master``), with a checkpoint directory in
both runs and the write-ahead log off or on (``fsync=always``: every block is on disk before
it is handed to a batch). Two rates, both from the feeder's first byte:

- ``ingest_lines_per_s``: until the batch that completed the count — the throughput of the
  stream at 1 s batches, what a stream can take for good. The 0.7 target applies to it.
- ``store_lines_per_s``: until the last line's block was in the tracker (with the log on:
  logged and fsynced), counted as blocks are added, so not rounded to batch boundaries. A
  receiver fed from memory stores far faster than the batches process (the rest waits in the
  driver's memory), so with the log on this is bound by the disk: ``disk_write_mb_per_s``
  is this machine's sequential write speed with an fdatasync every 50 MB, for comparison.

A third variant, ``wal_on_fsync_never``, logs without any fsync: the difference from
``fsync=always`` is the cost of the fsyncs alone.

Every run checks that the batches counted every line. The variants alternate, ``--repeat``
rounds, each run in a fresh driver process, with ``sync`` between them so one run's dirty
pages do not slow the next; the medians and the ratios of the medians are reported.

**Recovery.** A driver with the log on reads a socket stream (from a silent server) under
``getOrCreate``, writes a few checkpoints and is killed with SIGKILL. Then one minute of
unprocessed blocks — ``--recovery-rate`` lines a second for ``--recovery-seconds``, in
200 ms blocks, as the block generator would have cut them — is written into the stream's
log with the WAL API, as if the driver had received them after its last checkpoint. A new
driver process recovers with ``getOrCreate``; reported: the time ``ssc.start()`` took
(reading the log back and giving the blocks to the tracker), and the time from the new
process's start to the batch that processed every recovered line.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

T0 = time.time()  # the process's start, for the recovery measurement

#: The feeder process: serves a file to one client with sendfile; prints its port, then the
#: time of its first byte.
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
    conn.recv(1)
"""

LINE = "{:09d} the quick brown fox jumps over the lazy dog {:02d}\n"


def write_corpus(path: str, lines: int) -> int:
    """``lines`` numbered text lines; returns the file's size."""
    with open(path, "w", encoding="ascii") as f:
        for start in range(0, lines, 100_000):
            f.write("".join(LINE.format(i, i % 97) for i in range(start, min(lines, start + 100_000))))
    return os.path.getsize(path)


def child(args: list[str]) -> dict[str, Any]:
    """Run a child mode of this script in a fresh process; its last stdout line is JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    env["EMBER_DISABLE_PLUGINS"] = "ui"
    out = subprocess.run([sys.executable, os.path.abspath(__file__), *args], env=env,
                         capture_output=True, text=True, timeout=900, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- ingestion
def ingest(path: str, lines: int, master: str, wal: bool, fsync: str = "always") -> dict[str, Any]:
    from ember import Conf, Context
    from ember.streaming import StreamingContext
    from ember.streaming._blocks import ReceivedBlockTracker
    from ember.streaming.listener import StreamingListener

    stored = {"records": 0, "end": 0.0}
    done_storing = threading.Event()
    real_add = ReceivedBlockTracker.add

    def add(self: Any, block: Any) -> None:
        real_add(self, block)
        stored["records"] += block.num_records
        if stored["records"] >= lines and not done_storing.is_set():
            stored["end"] = time.time()
            done_storing.set()

    ReceivedBlockTracker.add = add  # type: ignore[method-assign]
    conf = Conf().set("spark.streaming.receiver.writeAheadLog.enable", str(wal).lower())
    conf.set("ember.streaming.receiver.writeAheadLog.fsync", fsync)
    sc = Context(master, "wal_cost", conf)
    sc.parallelize(range(4), 2).count()  # workers up before the clock starts
    checkpoints = tempfile.mkdtemp(prefix="wal-cost-")
    ssc = StreamingContext(sc, 1.0)
    ssc.checkpoint(checkpoints)
    processed = {"lines": 0, "end": 0.0}
    done = threading.Event()

    class Progress(StreamingListener):
        def onBatchCompleted(self, batchCompleted: Any) -> None:
            processed["lines"] += batchCompleted.batchInfo().numRecords()
            if processed["lines"] >= lines and not done.is_set():
                processed["end"] = time.time()
                done.set()

    ssc.addStreamingListener(Progress())
    feeder = subprocess.Popen([sys.executable, "-S", "-c", FEEDER, path],
                              stdout=subprocess.PIPE, text=True)
    assert feeder.stdout is not None
    port = int(feeder.stdout.readline())
    counted: list[int] = []
    ssc.socketTextStream("127.0.0.1", port, restartDelay=600.0, maxRestartDelay=600.0) \
        .count().foreachRDD(lambda rdd: counted.extend(rdd.collect()))
    ssc.start()
    first_byte = float(feeder.stdout.readline())
    ok = done_storing.wait(600) and done.wait(120)
    log_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in
                    os.walk(os.path.join(checkpoints, "receivedData")) for f in fs)
    ssc.stop(stopSparkContext=True)
    feeder.wait(30)
    shutil.rmtree(checkpoints, ignore_errors=True)
    if not ok:
        raise SystemExit(f"the run did not finish: stored {stored}, processed {processed}")
    seconds = stored["end"] - first_byte
    processed_s = processed["end"] - first_byte
    return {
        "wal": wal,
        "fsync": fsync if wal else None,
        "lines": lines,
        "processed_s": round(processed_s, 3),
        "ingest_lines_per_s": round(lines / processed_s),
        "stored_s": round(seconds, 3),
        "store_lines_per_s": round(lines / seconds),
        "store_mb_per_s": round(os.path.getsize(path) / seconds / 2**20, 1),
        "counted_exactly": sum(counted) == lines == processed["lines"],
        "log_bytes_at_end": log_bytes,
    }


# --------------------------------------------------------------------------- recovery
def silent_server() -> tuple[socket.socket, threading.Event]:
    """A TCP server that accepts connections and never sends anything."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue
        for c in held:
            c.close()
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return srv, stop


def recovery_setup(master: str, port: int) -> Any:
    """The application of the recovery runs (the same code in both processes)."""
    from ember import Conf, Context
    from ember.streaming import StreamingContext

    conf = Conf().setMaster(master).setAppName("wal_cost_recovery")
    conf.set("spark.streaming.receiver.writeAheadLog.enable", "true")
    ssc = StreamingContext(Context(conf=conf), 1.0)
    ssc.socketTextStream("127.0.0.1", port, restartDelay=600.0, maxRestartDelay=600.0) \
        .count().pprint()
    return ssc


#: The recovery runs' master and port, for :func:`recovery_app` (one function in both
#: processes, so that ``getOrCreate`` sees the same application code).
APP: dict[str, Any] = {}


def recovery_app() -> Any:
    return recovery_setup(APP["master"], APP["port"])


def recovery_first_run(checkpoints: str, master: str, port: int) -> None:
    """Run until a few batches have checkpoints, then die with SIGKILL."""
    from ember.streaming import StreamingContext

    APP.update(master=master, port=port)
    ssc = StreamingContext.getOrCreate(checkpoints, recovery_app)
    ssc.start()
    deadline = time.time() + 60
    while len([f for f in os.listdir(checkpoints) if f.startswith("checkpoint-")]) < 3:
        if time.time() > deadline:
            raise SystemExit("no checkpoints were written")
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)


def log_a_minute(checkpoints: str, rate: int, seconds: int) -> dict[str, int]:
    """Write ``seconds`` of 200 ms blocks of ``rate`` lines/s into stream 0's log."""
    from ember.streaming._blocks import CODEC_LINES, Block
    from ember.streaming._logged_blocks import encode_block, log_directory
    from ember.wal import FileWriteAheadLog

    per_block = max(1, rate // 5)
    blocks = seconds * 5
    now = int(time.time() * 1000) - seconds * 1000
    total = 0
    with FileWriteAheadLog(log_directory(checkpoints, 0), fsync="never") as wal:
        for b in range(blocks):
            start = b * per_block
            payload = "".join(LINE.format(i, i % 97)
                              for i in range(start, start + per_block)).encode()
            wal.write(encode_block(Block(f"input-0-r{b}", 0, payload, CODEC_LINES, per_block)),
                      now + b * 200)
            total += len(payload)
    os.sync()
    return {"blocks": blocks, "lines": blocks * per_block, "bytes": total}


def recovery_second_run(checkpoints: str, master: str, port: int, lines: int) -> dict:
    from ember.streaming import StreamingContext
    from ember.streaming.listener import StreamingListener

    processed = {"lines": 0, "end": 0.0}
    done = threading.Event()

    class Progress(StreamingListener):
        def onBatchCompleted(self, batchCompleted: Any) -> None:
            processed["lines"] += batchCompleted.batchInfo().numRecords()
            if processed["lines"] >= lines and not done.is_set():
                processed["end"] = time.time()
                done.set()

    APP.update(master=master, port=port)
    ssc = StreamingContext.getOrCreate(checkpoints, recovery_app)
    ssc.addStreamingListener(Progress())
    t_start = time.time()
    ssc.start()
    t_started = time.time()
    ok = done.wait(600)
    ssc.stop(stopSparkContext=True)
    if not ok:
        raise SystemExit(f"the recovered lines were not all processed: {processed}")
    return {
        "start_s": round(t_started - t_start, 3),
        "process_start_to_recovered_processed_s": round(processed["end"] - T0, 3),
        "lines_processed": processed["lines"],
    }


def recovery(master: str, rate: int, seconds: int) -> dict[str, Any]:
    srv, stop = silent_server()
    port = srv.getsockname()[1]
    checkpoints = tempfile.mkdtemp(prefix="wal-cost-recovery-")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
        env["EMBER_DISABLE_PLUGINS"] = "ui"
        first = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                                "recovery-first", checkpoints, master, str(port)],
                               env=env, capture_output=True, text=True, timeout=120, check=False)
        if first.returncode != -signal.SIGKILL:
            raise SystemExit(f"the first driver was not killed ({first.returncode}):\n"
                             f"{first.stderr[-3000:]}")
        logged = log_a_minute(checkpoints, rate, seconds)
        spawned = time.time()
        result = child(["--child", "recovery-second", checkpoints, master, str(port),
                        str(logged["lines"])])
        wall = time.time() - spawned
    finally:
        stop.set()
        shutil.rmtree(checkpoints, ignore_errors=True)
    return {
        "unprocessed_log": {"seconds": seconds, "lines_per_s": rate, **logged},
        "ssc_start_s (read the log back)": result["start_s"],
        "new_process_to_all_recovered_lines_processed_s":
            result["process_start_to_recovered_processed_s"],
        "spawn_to_all_processed_s": round(wall, 3),
        "recovered_lines_processed": result["lines_processed"] == logged["lines"],
    }


def disk_write_mb_per_s(directory: str, mb: int = 300) -> float:
    """Sequential writes of 50 MB, each followed by fdatasync, into ``directory``."""
    path = os.path.join(directory, "disk-speed")
    chunk = os.urandom(1 << 20) * 50
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        start = time.time()
        for _ in range(mb // 50):
            os.write(fd, chunk)
            os.fdatasync(fd)
        return round(mb / (time.time() - start), 1)
    finally:
        os.close(fd)
        os.unlink(path)


# --------------------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=10_000_000)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--recovery-rate", type=int, default=50_000)
    p.add_argument("--recovery-seconds", type=int, default=60)
    p.add_argument("--child", nargs="+")
    args = p.parse_args()
    if args.child:
        mode, *rest = args.child
        if mode == "ingest":
            mode = rest[3]
            print(json.dumps(ingest(rest[0], int(rest[1]), rest[2], mode != "off",
                                    "never" if mode == "never" else "always")))
        elif mode == "recovery-first":
            recovery_first_run(rest[0], rest[1], int(rest[2]))
        elif mode == "recovery-second":
            print(json.dumps(recovery_second_run(rest[0], rest[1], int(rest[2]), int(rest[3]))))
        return
    with tempfile.TemporaryDirectory(prefix="wal-cost-corpus-") as tmp:
        path = os.path.join(tmp, "lines.txt")
        size = write_corpus(path, args.lines)
        os.sync()
        disk = disk_write_mb_per_s(tempfile.gettempdir())
        runs: dict[str, list[dict]] = {"off": [], "on": [], "never": []}
        for _ in range(args.repeat):
            for mode in ("off", "on", "never"):
                runs[mode].append(child(["--child", "ingest", path, str(args.lines),
                                         args.master, mode]))
                os.sync()
    med = {m: statistics.median(r["ingest_lines_per_s"] for r in runs[m]) for m in runs}
    store = {m: statistics.median(r["store_lines_per_s"] for r in runs[m]) for m in runs}
    result = {
        "benchmark": "wal_cost",
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "master": args.master,
        "batch_interval_s": 1.0,
        "block_interval_s": 0.2,
        "fsync": "always",
        "lines": args.lines,
        "corpus_mb": round(size / 2**20, 1),
        "ingest_lines_per_s": {"wal_off": round(med["off"]), "wal_on": round(med["on"])},
        "wal_on_over_off": round(med["on"] / med["off"], 3),
        "meets_0_7": med["on"] >= 0.7 * med["off"],
        "store_lines_per_s": {"wal_off": round(store["off"]), "wal_on": round(store["on"])},
        "store_wal_on_over_off": round(store["on"] / store["off"], 3),
        "wal_on_fsync_never": {"ingest_lines_per_s": round(med["never"]),
                               "store_lines_per_s": round(store["never"])},
        "disk_write_mb_per_s": disk,
        "runs": runs,
        "recovery": recovery(args.master, args.recovery_rate, args.recovery_seconds),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
