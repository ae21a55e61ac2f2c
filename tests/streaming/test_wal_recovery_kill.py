"""Zero data loss with the write-ahead log: a driver killed with SIGKILL loses nothing.

A small program (:data:`APP`, written into ``tmp_path``) reads a
:class:`~ember.testing.ReplayableServer` (a real TCP server in this test process: numbered
records, resent until acknowledged) with the reliable
:class:`~ember.testing.ReplayableReceiver`, through ``StreamingContext.getOrCreate`` on the
system clock (0.25 s batches). Its output operation writes each batch's records to
``out/out-<batch ms>.json`` atomically (temporary file, rename): a batch run again replaces
its own file, so the files hold each record exactly once if and only if the stream processed
each record exactly once.

The program kills itself with SIGKILL at the point named by ``KILL_AT`` (read when the point
is reached, so a recovered program, whose functions come from the checkpoint, still obeys
the variable of its own run):

- ``mid-block:K`` — in the middle of the K-th write to the write-ahead log: half a record
  reaches the segment (a torn tail the next run must cut);
- ``before-ack:N`` — once records up to N are stored (logged), before the acknowledgement;
- ``before-output:N`` / ``after-output:N`` — in the output operation of the first batch
  holding a record at or past N, before / after its file is written (the batch is not
  completed, so it is run again);
- ``mid-checkpoint:K`` — the K-th checkpoint write, after its temporary file is complete and
  before the rename.

With the log, every kill is followed by a restart, and in the end the files hold every
record exactly once. Without it, the same kind of kill (after the receiver acknowledged,
before the batch completed) loses records — the guide's "past data lost" — so the test with
the log cannot pass by accident. Every wait is a bounded poll.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ember.testing import ReplayableServer

pytestmark = pytest.mark.slow

#: The program the test kills and restarts.
APP = '''\
"""Reads a ReplayableServer reliably; tests/streaming/test_wal_recovery_kill.py kills it."""

import json
import os
import signal
import sys

import ember.wal
from ember import Conf, Context
from ember.streaming import StreamingContext
from ember.testing import ReplayableReceiver

CHECKPOINTS, OUT, PORT, WAL = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def kill_point():
    """(name, number) of this run's kill point, read when asked."""
    name, _, n = os.environ.get("KILL_AT", "").partition(":")
    return name, int(n or 0)


def die(why):
    print("killing myself:", why, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


class Receiver(ReplayableReceiver):
    def acknowledge(self, sock, position):
        name, n = kill_point()
        if name == "before-ack" and position >= n:
            die(f"records before {position} are stored, not acknowledged")
        super().acknowledge(sock, position)


def write_batch(t, rdd):
    records = sorted(rdd.collect())
    name, n = kill_point()
    late = bool(records) and records[-1] >= n
    if name == "before-output" and late:
        die(f"batch {t} holds {len(records)} records, its output is not written")
    batch_ms = round(t.timestamp() * 1000)
    path = os.path.join(OUT, f"out-{batch_ms}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(records, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if name == "after-output" and late:
        die(f"batch {t} output written, the batch is not completed")


def setup():
    conf = Conf().setMaster("inline").setAppName("wal-kill")
    conf.set("spark.streaming.receiver.writeAheadLog.enable", WAL)
    conf.set("ember.streaming.receiver.writeAheadLog.rollingIntervalSecs", "1")
    ssc = StreamingContext(Context(conf=conf), 0.25)
    ssc.checkpoint(CHECKPOINTS)
    ssc.receiverStream(Receiver(PORT, batch_size=50, max_wait=0.02)).foreachRDD(write_batch)
    return ssc


def install_process_kill_points():
    """Kill points in ember's own code: patched in this process only, never pickled."""
    name, n = kill_point()
    if name == "mid-block":
        real, calls = ember.wal._write_all, [0]

        def torn_write(fd, buffers):
            if len(buffers) >= 2:  # a record: its frame, then its parts
                calls[0] += 1
                if calls[0] == n:
                    record = b"".join(bytes(b) for b in buffers[1:])
                    os.write(fd, bytes(buffers[0]) + record[: len(record) // 2])
                    die(f"write-ahead log record {n} half written")
            real(fd, buffers)

        ember.wal._write_all = torn_write
    elif name == "mid-checkpoint":
        real_replace, calls = os.replace, [0]

        def replace(src, dst, *args, **kwargs):
            if os.path.basename(str(dst)).startswith("checkpoint-"):
                calls[0] += 1
                if calls[0] == n:
                    die(f"checkpoint {dst} written to {src}, not renamed")
            return real_replace(src, dst, *args, **kwargs)

        os.replace = replace


install_process_kill_points()
ssc = StreamingContext.getOrCreate(CHECKPOINTS, setup)
ssc.start()
print("started", flush=True)
ssc.awaitTermination()
'''

TOTAL = 1500
#: Records a second from the server: the stream runs for a few seconds, so the kills land
#: mid-stream.
RATE = 600


class Driver:
    """Runs :data:`APP` again and again over the same checkpoint and output directories."""

    def __init__(self, tmp_path: Path, port: int, wal: bool) -> None:
        self.program = tmp_path / "app.py"
        self.program.write_text(APP, encoding="utf-8")
        self.checkpoints = tmp_path / "checkpoints"
        self.out = tmp_path / "out"
        self.out.mkdir()
        self.port = port
        self.wal = "true" if wal else "false"
        self.logs: list[Path] = []
        self.proc: subprocess.Popen | None = None

    def start(self, kill_at: str = "") -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
        env.pop("PYTHONPATH", None)
        env["EMBER_DISABLE_PLUGINS"] = "ui"
        env["KILL_AT"] = kill_at
        log = self.program.parent / f"run-{len(self.logs)}-{kill_at or 'final'}.log"
        self.logs.append(log)
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.program), str(self.checkpoints), str(self.out),
                 str(self.port), self.wal],
                stdout=f, stderr=subprocess.STDOUT, env=env, cwd=self.program.parent,
            )

    def log(self, i: int = -1) -> str:
        return self.logs[i].read_text(errors="replace")

    def wait_killed(self, timeout: float = 30.0) -> None:
        """Wait for the program to reach its kill point and die there."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the kill point was not reached in {timeout} s:\n{self.log()}")
        assert code == -signal.SIGKILL, f"exit code {code}:\n{self.log()}"
        assert "killing myself" in self.log(), self.log()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def outputs(self) -> list[int]:
        """Every record in the batch files (a file being replaced is read whole or not)."""
        records: list[int] = []
        for path in self.out.glob("out-*.json"):
            try:
                records += json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                continue
        return records

    def wait_output(self, predicate, what: str, timeout: float = 30.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"the program ended ({self.proc.returncode}):\n{self.log()}")
            records = self.outputs()
            if predicate(records):
                return records
            time.sleep(0.05)
        pytest.fail(f"timed out waiting for {what}; output holds {len(self.outputs())} "
                    f"records:\n{self.log()}")


@pytest.fixture
def server():
    with ReplayableServer(total=TOTAL, rate=RATE) as srv:
        yield srv


def test_with_the_write_ahead_log_a_killed_driver_loses_nothing_and_repeats_nothing(
        tmp_path, server):
    driver = Driver(tmp_path, server.port, wal=True)
    kills = ["mid-block:4", "before-ack:350", "before-output:600", "after-output:850",
             "mid-checkpoint:6"]
    try:
        for kill_at in kills:
            driver.start(kill_at)
            driver.wait_killed()
        driver.start()
        records = driver.wait_output(lambda r: len(set(r)) >= TOTAL, "every record")
        assert server.wait_acked(TOTAL, 10)
        time.sleep(0.5)  # a few more batches: nothing may come twice after the last record
        records = driver.outputs()
    finally:
        driver.stop()
    missing = sorted(set(range(TOTAL)) - set(records))
    twice = sorted(r for r in set(records) if records.count(r) > 1)
    assert not missing, f"lost {len(missing)} records: {missing[:20]}"
    assert not twice, f"{len(twice)} records in two batches: {twice[:20]}"
    assert sorted(records) == list(range(TOTAL))
    # each kill point was real: the torn record was cut, the receiver resumed where the
    # log ended, and the server saw one connection per run
    assert "cutting a torn record" in driver.log(1), driver.log(1)
    assert server.connections >= len(kills) + 1


def test_without_the_write_ahead_log_a_killed_driver_loses_acknowledged_data(tmp_path, server):
    driver = Driver(tmp_path, server.port, wal=False)
    try:
        driver.start("before-output:400")
        driver.wait_killed()
        assert server.acked >= 400  # the records of the killed batch were acknowledged
        driver.start()
        assert server.wait_acked(TOTAL, 30), driver.log()
        records = driver.wait_output(lambda r: max(r, default=-1) >= TOTAL - 1,
                                     "the last record")
        time.sleep(0.5)
        records = driver.outputs()
    finally:
        driver.stop()
    missing = set(range(TOTAL)) - set(records)
    assert missing, "no record was lost: this kill point does not show the guide's loss"
    assert max(missing) < TOTAL - 1
    assert len(records) == len(set(records))  # lost, never duplicated
