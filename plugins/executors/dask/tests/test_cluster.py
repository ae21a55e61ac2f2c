"""End to end on a real Dask cluster: ``dask scheduler`` and two ``dask worker`` processes
started with Dask's own commands on 127.0.0.1, a stateful streaming word count through them,
one worker killed with SIGKILL in the middle of a batch, and exact counts all the same."""

from __future__ import annotations

import operator
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ember import Context, hookimpl
from ember.streaming import StreamingContext
from ember.testing import ManualClock, advance_batches
from ember_dask import DaskSchedulerLostError, LocalDaskCluster

pytestmark = pytest.mark.slow

WAIT = 60.0
WORDS = "apple banana cherry damson elder fig grape hazel".split()


def _wait_for(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def _batch(i: int) -> list[str]:
    """Batch ``i``: 40 lines of words, different in every batch."""
    return [" ".join(WORDS[(i + j + k) % len(WORDS)] for k in range(1 + (i + j) % 4))
            for j in range(40)]


@pytest.fixture
def cluster() -> Iterator[LocalDaskCluster]:
    """A scheduler and two workers without nannies (a killed worker stays dead)."""
    with LocalDaskCluster(2, nanny=False) as c:
        yield c


def test_a_stateful_word_count_survives_a_worker_killed_mid_batch(
    cluster: LocalDaskCluster, tmp_path: Path
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    armed = tmp_path / "armed"
    started.mkdir()

    def update(new: list[int], old: int | None) -> int:
        # In the armed batch the reduce side of the state's shuffle blocks (bounded) until
        # the test has killed one of the workers running it.
        if armed.exists() and not release.exists():
            (started / f"{os.getpid()}-{time.monotonic_ns()}").touch()
            deadline = time.monotonic() + WAIT
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.005)
        return sum(new) + (old or 0)

    class TaskErrors:
        def __init__(self) -> None:
            self.errors: list[str] = []

        @hookimpl
        def ember_task_completed(self, task: Any) -> None:
            if task.error:
                self.errors.append(task.error)

    sc = Context(f"dask://{cluster.address.removeprefix('tcp://')}", "dask-e2e")
    task_errors = TaskErrors()
    sc._hooks.register(task_errors, "dask-e2e-task-errors")
    ssc = StreamingContext(sc, 1.0, clock=ManualClock())
    try:
        assert sc.defaultParallelism == 2
        ssc.checkpoint(str(tmp_path / "checkpoint"))
        batches = [_batch(i) for i in range(8)]
        queue = [sc.parallelize(b, 2) for b in batches]
        counts = (
            ssc.queueStream(queue, oneAtATime=True)
            .flatMap(str.split)
            .map(lambda w: (w, 1))
            .reduceByKey(operator.add)
            .updateStateByKey(update)
        )
        seen: list[dict[str, int]] = []
        counts.foreachRDD(lambda rdd: seen.append(dict(rdd.collect())))
        ssc.start()
        advance_batches(ssc, 3, timeout=WAIT)
        pids_before = set(sc._executor.worker_pids())
        assert len(pids_before) == 2

        armed.touch()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                advance_batches(ssc, 1, timeout=WAIT)
            except BaseException as exc:  # reported below
                box["error"] = exc

        thread = threading.Thread(target=run, name="dask-e2e-batch")
        thread.start()
        try:
            busy = _wait_for(
                lambda: {int(p.name.split("-")[0]) for p in started.iterdir()} & pids_before,
                "the update function to run in a worker")
            victim = min(busy)
            os.kill(victim, signal.SIGKILL)
        finally:
            release.touch()
            thread.join(WAIT)
        assert not thread.is_alive(), "the batch did not finish after a worker was killed"
        assert "error" not in box, f"the batch failed: {box.get('error')!r}"
        armed.unlink()
        advance_batches(ssc, 4, timeout=WAIT)

        assert victim not in sc._executor.worker_pids()
        # The map outputs the dead worker held were found missing and recomputed.
        assert any("FetchFailed" in e for e in task_errors.errors), task_errors.errors
        expected: Counter[str] = Counter()
        for i, batch in enumerate(batches):
            expected.update(w for line in batch for w in line.split())
            assert seen[i] == dict(expected), f"batch {i}"
        assert len(seen) == 8
    finally:
        ssc.stop(stopSparkContext=True)


def test_a_lost_scheduler_fails_the_stream_with_a_clear_error() -> None:
    with LocalDaskCluster(1, nanny=False) as cluster:
        sc = Context(f"dask://{cluster.address.removeprefix('tcp://')}", "dask-lost")
        ssc = StreamingContext(sc, 1.0, clock=ManualClock())
        try:
            seen: list[int] = []
            queue = [sc.parallelize(range(10), 2) for _ in range(3)]
            ssc.queueStream(queue).foreachRDD(lambda rdd: seen.append(rdd.sum()))
            ssc.start()
            advance_batches(ssc, 1, timeout=WAIT)
            assert seen == [45]
            assert cluster.scheduler is not None
            cluster.scheduler.send_signal(signal.SIGKILL)
            cluster.scheduler.wait(WAIT)
            advance_batches(ssc, 1, timeout=WAIT)
            with pytest.raises(DaskSchedulerLostError) as info:
                ssc.awaitTerminationOrTimeout(WAIT)
            message = str(info.value)
            assert cluster.address in message
            assert "Restart the scheduler" in message and "getOrCreate" in message
            assert seen == [45]
            with pytest.raises(DaskSchedulerLostError):  # batch jobs fail the same way
                sc.parallelize(range(10), 2).sum()
        finally:
            ssc.stop(stopSparkContext=True)
