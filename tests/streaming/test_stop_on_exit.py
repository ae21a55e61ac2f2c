"""A program that ends (or is interrupted) without calling ``stop()``: the active
StreamingContext is stopped at interpreter exit, as Spark's shutdown hook does, instead of
the process first running every queued batch (or hanging on one that waits for the stop)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ember import Conf, Context
from ember.streaming import StreamingContext
from ember.testing import ManualClock

PROGRAM = textwrap.dedent("""
    import json, os, signal, sys, time
    from ember import Conf, Context
    from ember.streaming import StreamingContext, StreamingContextState
    from ember.testing import ManualClock

    out, graceful = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    conf = Conf().set("spark.streaming.stopGracefullyOnShutdown", graceful)
    sc = Context("inline", "exit-test", conf=conf)
    clock = ManualClock()
    ssc = StreamingContext(sc, 1.0, clock=clock)
    done = []

    def keep(t, rdd):
        if not done:  # the first batch runs until the context is being stopped
            while ssc.getState() is not StreamingContextState.STOPPED:
                time.sleep(0.005)
        done.append(rdd.collect())
        with open(out, "w") as f:
            json.dump(done, f)

    ssc.queueStream([[i] for i in range(5)]).foreachRDD(keep)
    ssc.start()
    clock.advance(5.0)  # five batches generated; the first one blocks the other four
    while len(ssc._scheduler._batches) < 5:
        time.sleep(0.005)
    {ending}
""")


CTRL_C = "os.kill(os.getpid(), signal.SIGINT); time.sleep(30)"
TERM = "os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)"
ALL_BATCHES = [[0], [1], [2], [3], [4]]


def _run(tmp_path: Path, ending: str, graceful: bool) -> tuple[subprocess.CompletedProcess[str],
                                                              Any]:
    """Run the program ending with ``ending``; return it and the batches it completed (None
    when it completed none)."""
    out = tmp_path / "done.json"
    program = tmp_path / "program.py"
    program.write_text(PROGRAM.format(ending=ending))
    proc = subprocess.run([sys.executable, str(program), str(out), str(graceful).lower()],
                          capture_output=True, text=True, timeout=60)
    return proc, json.loads(out.read_text()) if out.exists() else None


@pytest.mark.parametrize("ending", ["pass", CTRL_C], ids=["end", "ctrl-c"])
def test_an_unstopped_context_is_stopped_at_exit_dropping_queued_batches(tmp_path, ending):
    proc, done = _run(tmp_path, ending, graceful=False)
    if ending == "pass":
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode != 0 and "KeyboardInterrupt" in proc.stderr, proc.stderr
    assert done == [[0]], "the running batch ends; queued ones are dropped"


def test_stop_gracefully_on_shutdown_runs_the_queued_batches_first(tmp_path):
    proc, done = _run(tmp_path, "pass", graceful=True)
    assert proc.returncode == 0, proc.stderr
    assert done == ALL_BATCHES


def test_with_stop_gracefully_on_shutdown_sigterm_stops_gracefully(tmp_path):
    proc, done = _run(tmp_path, TERM, graceful=True)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert done == ALL_BATCHES


def test_without_it_sigterm_keeps_its_default_action(tmp_path):
    proc, done = _run(tmp_path, TERM, graceful=False)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert done is None, "killed at once: the blocked first batch never ended"


def test_sigterm_gets_its_default_action_back_after_stop():
    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        sc = Context("inline", "sigterm", conf=Conf().set(
            "ember.streaming.stopGracefullyOnShutdown", "true"))
        ssc = StreamingContext(sc, 1.0, clock=ManualClock())
        ssc.queueStream([[1]]).foreachRDD(lambda rdd: None)
        ssc.start()
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, "set while active"
        ssc.stop()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)
