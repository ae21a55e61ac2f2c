"""Nothing lost, nothing counted twice: a driver killed with SIGKILL recovers exactly.

A small program (:data:`APP`, written into ``tmp_path``) runs a running word count —
``updateStateByKey`` over ``textFileStream`` — with ``StreamingContext.getOrCreate``, on the
system clock with 0.25 s batches and two worker processes. After every batch its output
operation writes the whole state atomically to ``out/state.json`` (temporary file, rename),
with the batch time and its process id; and the same record as ``out/batches/<batch ms>.json``
(a batch run again replaces its own file).

The test moves files into the watched directory (written aside, renamed in), kills the
program with SIGKILL at a chosen point, moves more files in while it is down, starts it again
(the same program: ``getOrCreate`` recovers from the checkpoint), moves more files in, and
checks that the last state written is exactly the word counts over *all* the files.

The kill points:

- **between batches**: once the state shows every file so far (the program is idle almost
  all the time: a batch takes milliseconds of its 250);
- **at once**: right after files were moved in, wherever the program is;
- **mid-batch, before its output**: the output operation of the batch that counted the new
  files waits on a marker file (``out/hold-before``) and the program is killed while it waits;
- **mid-batch, after its output**: the same, once ``state.json`` is written but before the
  batch's completion checkpoint (``out/hold-after``): the batch is re-run, and its words
  must not be counted twice;
- **during a checkpoint write**: the program (``PAUSE_CHECKPOINT_WRITES=1``) wraps the
  checkpoint writer's rename so that, once ``out/pause-checkpoint`` exists, a write stops
  after its temporary file is complete and before the rename; the program is killed there.

Each scenario can fail: beside the recovering restart, a control restart from a copy of the
killed program's input, with a fresh checkpoint directory, must end with wrong counts.

There is no manual clock across processes: every wait is a bounded poll of a file, with a
timeout that names what was awaited and shows the program's log.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

#: The program the test kills: a running word count with getOrCreate.
APP = '''\
"""A running word count that tests/streaming/test_recovery_kill.py kills and restarts."""

import json
import os
import sys
import time

from ember import Conf, Context
from ember.streaming import StreamingContext

SOURCE, CHECKPOINTS, OUT = sys.argv[1:4]


def add_counts(new_values, state):
    return sum(new_values) + (state or 0)


def hold(marker, batch_ms, counts):
    """If OUT/<marker> names a word the state counts, wait while the marker exists (the test
    kills the program meanwhile)."""
    path = os.path.join(OUT, marker)
    try:
        with open(path) as f:
            word = f.read()
    except FileNotFoundError:
        return
    if word in counts:
        with open(os.path.join(OUT, marker + ".holding"), "w") as f:
            f.write(str(batch_ms))
        while os.path.exists(path):
            time.sleep(0.01)


def write_state(time_, rdd):
    counts = dict(rdd.collect())
    batch_ms = round(time_.timestamp() * 1000)
    hold("hold-before", batch_ms, counts)
    record = {"batch": batch_ms, "pid": os.getpid(), "counts": counts}
    for name in (f"batches/{batch_ms}.json", "state.json"):
        tmp = os.path.join(OUT, ".tmp.json")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, os.path.join(OUT, name))
    hold("hold-after", batch_ms, counts)


def create_context():
    sc = Context("local[2]", "kill-test", Conf())
    ssc = StreamingContext(sc, 0.25)
    words = ssc.textFileStream(SOURCE).flatMap(lambda line: line.split())
    counts = words.map(lambda word: (word, 1)).updateStateByKey(add_counts)
    counts.checkpoint(1.0)  # the state is saved every 4 batches
    counts.foreachRDD(write_state)
    return ssc


if os.environ.get("PAUSE_CHECKPOINT_WRITES"):
    import types

    import ember.streaming._checkpoint as checkpoint_module

    real_os = os

    class PausingOs(types.ModuleType):
        """The os module, but a checkpoint's rename waits for ever once OUT/pause-checkpoint
        exists: its temporary file is complete, the rename has not happened."""

        def __getattr__(self, name):
            return getattr(real_os, name)

        def replace(self, src, dst):
            if (real_os.path.basename(dst).startswith("checkpoint-")
                    and real_os.path.exists(real_os.path.join(OUT, "pause-checkpoint"))):
                with open(real_os.path.join(OUT, "paused"), "w") as f:
                    f.write(json.dumps([src, dst]))
                while True:
                    time.sleep(0.01)
            real_os.replace(src, dst)

    checkpoint_module.os = PausingOs("os")


ssc = StreamingContext.getOrCreate(CHECKPOINTS, create_context)
ssc.start()
ssc.awaitTermination()
'''

#: Seconds any single wait may take (generous: the machine may be busy).
TIMEOUT = 30.0

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]


class Program:
    """One run of :data:`APP` as a child process, with its log."""

    def __init__(self, root: Path, source: Path, checkpoints: Path, out: Path,
                 env: dict[str, str] | None = None) -> None:
        self.log_path = root / f"log-{time.monotonic_ns()}.txt"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
        environment.pop("PYTHONPATH", None)
        environment.update(env or {})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(root / "app.py"), str(source), str(checkpoints),
                 str(out)],
                stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=root,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(TIMEOUT)


class Deployment:
    """The directories of one application and the files moved into its input."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.source, self.staging = root / "in", root / "staging"
        self.checkpoints, self.out = root / "checkpoints", root / "out"
        for d in (self.source, self.staging, self.out, self.out / "batches"):
            d.mkdir(parents=True, exist_ok=True)
        self.counts: Counter[str] = Counter()
        self.files = 0
        self.programs: list[Program] = []
        #: A batch the killed program did not complete, which the restart must run again.
        self.must_rerun: int | None = None

    def start(self, **env: str) -> Program:
        program = Program(self.root.parent, self.source, self.checkpoints, self.out, env)
        self.programs.append(program)
        return program

    def move_in(self, n: int = 2) -> None:
        """``n`` files arrive complete: written in the staging directory, renamed in."""
        for _ in range(n):
            i = self.files
            self.files += 1
            words = [WORDS[(i + k) % len(WORDS)] for k in range(i % 4 + 1)] + [f"file{i}"]
            staged = self.staging / f"part-{i:04d}.txt"
            staged.write_text(" ".join(words) + "\n", encoding="utf-8")
            os.rename(staged, self.source / staged.name)
            self.counts.update(words)

    def state(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.out / "state.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def batch_outputs(self) -> dict[int, dict[str, Any]]:
        """The record written for each batch time, by batch time."""
        return {int(p.stem): json.loads(p.read_text(encoding="utf-8"))
                for p in (self.out / "batches").glob("*.json")}

    def wait_for(self, program: Program, what: str, predicate: Callable[[], Any]) -> Any:
        """Poll ``predicate`` until it is true (bounded); fail naming ``what`` otherwise."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            value = predicate()
            if value:
                return value
            if program.proc.poll() is not None:
                pytest.fail(f"the program exited ({program.proc.returncode}) while waiting "
                            f"for {what}:\n{program.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {TIMEOUT} s waiting for {what}; last state "
                            f"{self.state()}\n{program.log()}")
            time.sleep(0.02)

    def wait_running(self, program: Program) -> None:
        """Until ``program`` wrote a state (its first batch ran, or its recovery did)."""
        self.wait_for(program, f"program {program.pid} to write a state",
                      lambda: (s := self.state()) is not None and s["pid"] == program.pid)

    def wait_counted(self, program: Program, since: int = 0) -> dict[str, int]:
        """Until ``program`` wrote a state that has counted the files moved in so far (from
        file number ``since`` on); returns its counts."""
        def counted() -> dict[str, int] | None:
            s = self.state()
            if s is None or s["pid"] != program.pid:
                return None
            wanted = {f"file{i}" for i in range(since, self.files)}
            return s["counts"] if wanted <= set(s["counts"]) else None

        return self.wait_for(
            program, f"program {program.pid} to count files {since}..{self.files - 1}",
            counted)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    d = Deployment(tmp_path / "app")
    yield d
    for program in d.programs:
        program.kill()


def kill_between_batches(d: Deployment, program: Program) -> None:
    d.move_in(3)
    d.wait_counted(program)
    program.kill()


def kill_at_once(d: Deployment, program: Program) -> None:
    d.wait_counted(program)
    d.move_in(3)
    program.kill()


def kill_mid_batch_before_its_output(d: Deployment, program: Program) -> None:
    held = kill_mid_batch(d, program, "hold-before")
    assert held not in d.batch_outputs(), "the batch had not written its output"
    d.must_rerun = held


def kill_mid_batch_after_its_output(d: Deployment, program: Program) -> None:
    held = kill_mid_batch(d, program, "hold-after")
    assert d.state()["counts"] == dict(d.counts), "the batch's state was written"
    assert d.batch_outputs()[held]["pid"] == program.pid
    d.must_rerun = held


def kill_mid_batch(d: Deployment, program: Program, marker: str) -> int:
    """Kill ``program`` while the output operation of the batch with new files waits on
    ``marker``; returns that batch's time."""
    d.wait_counted(program)
    d.move_in(3)
    (d.out / marker).write_text(f"file{d.files - 1}", encoding="utf-8")  # hold once counted
    holding = d.out / f"{marker}.holding"
    d.wait_for(program, f"a batch to wait on {marker}", holding.exists)
    program.kill()
    (d.out / marker).unlink()
    held = int(holding.read_text(encoding="utf-8"))
    holding.unlink()
    return held


def kill_during_a_checkpoint_write(d: Deployment, program: Program) -> None:
    d.wait_counted(program)
    d.move_in(3)
    (d.out / "pause-checkpoint").touch()
    paused = d.out / "paused"
    d.wait_for(program, "a checkpoint write to pause before its rename", paused.exists)
    tmp, _target = json.loads(paused.read_text(encoding="utf-8"))
    assert os.path.getsize(tmp) > 0, "the temporary file is written, not yet renamed"
    program.kill()
    (d.out / "pause-checkpoint").unlink()
    assert os.path.exists(tmp), "the kill left the temporary file behind"


SCENARIOS = [
    kill_between_batches,
    kill_at_once,
    kill_mid_batch_before_its_output,
    kill_mid_batch_after_its_output,
    kill_during_a_checkpoint_write,
]


@pytest.mark.parametrize("kill", SCENARIOS, ids=[s.__name__[5:] for s in SCENARIOS])
def test_a_killed_driver_recovers_with_exact_counts(deployment, kill, tmp_path):
    d = deployment
    env = {"PAUSE_CHECKPOINT_WRITES": "1"} if kill is kill_during_a_checkpoint_write else {}
    first = d.start(**env)
    d.wait_running(first)
    d.move_in(2)
    d.wait_counted(first)
    kill(d, first)
    assert first.proc.returncode == -signal.SIGKILL

    # the control: the same input, a fresh checkpoint directory (no recovery)
    control = Deployment(tmp_path / "control")
    shutil.copytree(d.source, control.source, dirs_exist_ok=True)
    control.counts, control.files = Counter(d.counts), d.files

    d.move_in(2)  # while the driver is down
    second = d.start()
    control_run = control.start()
    d.wait_running(second)
    control.wait_running(control_run)
    d.move_in(2)
    control.move_in(2)

    final = d.wait_counted(second)
    assert final == dict(d.counts), "every file counted exactly once"
    # every batch time ran, those the driver was down for included; the incomplete one again
    outputs = d.batch_outputs()
    times = sorted(outputs)
    assert times == list(range(times[0], times[-1] + 1, 250)), "no batch time is skipped"
    if d.must_rerun is not None:
        assert outputs[d.must_rerun]["pid"] == second.pid, "the incomplete batch ran again"
    wrong = control.wait_counted(control_run, since=control.files - 2)
    assert wrong != dict(control.counts), "without recovery the counts are wrong"
    for program in (second, control_run):
        program.kill()
    assert "Traceback" not in second.log(), second.log()
