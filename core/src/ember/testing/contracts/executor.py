"""The executor contract: what every ``ember.executors`` plugin must do, run as real jobs.

Subclass :class:`ExecutorContract` and provide the ``master`` fixture::

    from ember.testing.contracts.executor import ExecutorContract

    class TestMyExecutor(ExecutorContract):
        @pytest.fixture
        def master(self):
            return "mine://127.0.0.1:9000"

Capability fixtures (override when the default does not describe your executor):

- ``supports_worker_kill`` (default ``False``): whether the executor's workers are processes
  on this machine, listed by ``Executor.worker_pids()``, that the test may kill with SIGKILL.

The suite runs jobs through a real :class:`ember.Context`; every function it ships is defined
inside the test, so workers need only ember-core (not pytest, not this module).
"""

from __future__ import annotations

import operator
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ember.context import Context
from ember.errors import RemoteTraceback
from ember.testing.contracts.base import ContractTests

__all__ = ["ExecutorContract"]

_WORDS = "the quick brown fox jumps over the lazy dog the end".split()


def _wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``predicate`` (state that worker processes change) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie (killed, not yet reaped by the executor) is gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class ExecutorContract(ContractTests):
    """The rules of :class:`ember.executors.Executor`, as tests of whole jobs.

    Required fixture: ``master``. Capability fixture: ``supports_worker_kill``.
    """

    __ember_contract__: ClassVar[bool] = True

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def master(self) -> str:
        """Return the master URL that selects the executor under test.

        Its scheme must be the executor's entry-point name in ``ember.executors``, e.g.
        ``"local[2]"`` or ``"dask://127.0.0.1:8786"``; any server it names must already be
        running (start it in a fixture of your own).
        """
        raise NotImplementedError(
            "an ExecutorContract subclass must define the `master` fixture, returning the "
            "master URL of the executor under test (e.g. `return 'local[2]'`)"
        )

    @pytest.fixture
    def supports_worker_kill(self) -> bool:
        """Return whether worker processes may be killed by the test (default False).

        ``True`` promises that ``Executor.worker_pids()`` lists the live workers, that they
        run on this machine, and that one killed with SIGKILL mid-task is replaced.
        """
        return False

    @pytest.fixture
    def ctx(self, master: str, tmp_path: Path) -> Iterator[Context]:
        """A running context on the executor under test, stopped after the test."""
        context = Context(master, "executor-contract")
        context.setCheckpointDir(str(tmp_path / "checkpoints"))
        try:
            yield context
        finally:
            context.stop()

    # ------------------------------------------------------------------ results

    def test_declares_at_least_one_slot(self, ctx: Context) -> None:
        assert isinstance(ctx.defaultParallelism, int)
        assert ctx.defaultParallelism >= 1
        assert ctx.parallelize(range(10)).getNumPartitions() == ctx.defaultParallelism

    def test_a_small_job_gives_exact_results(self, ctx: Context) -> None:
        counts = (
            ctx.parallelize(_WORDS, 3)
            .map(lambda w: (w, 1))
            .reduceByKey(operator.add, 2)
            .collect()
        )
        expected: dict[str, int] = {}
        for w in _WORDS:
            expected[w] = expected.get(w, 0) + 1
        assert len(counts) == len(expected)
        assert dict(counts) == expected

    def test_collect_returns_records_in_partition_order(self, ctx: Context) -> None:
        data = list(range(103))
        rdd = ctx.parallelize(data, 7).map(lambda x: x * 2)
        assert rdd.collect() == [x * 2 for x in data]
        parts = rdd.glom().collect()
        assert len(parts) == 7
        assert [x for p in parts for x in p] == [x * 2 for x in data]
        assert ctx.parallelize(range(1, 5), 2).glom().collect() == [[1, 2], [3, 4]]

    def test_a_multi_stage_job_gives_exact_results(self, ctx: Context) -> None:
        pairs = [(i % 11, i) for i in range(300)]
        out = (
            ctx.parallelize(pairs, 5)
            .reduceByKey(operator.add, 3)
            .map(lambda kv: (kv[1] % 4, kv[0]))
            .groupByKey(2)
            .mapValues(sorted)
            .collect()
        )
        sums: dict[int, int] = {}
        for k, v in pairs:
            sums[k] = sums.get(k, 0) + v
        expected: dict[int, list[int]] = {}
        for k, s in sums.items():
            expected.setdefault(s % 4, []).append(k)
        assert dict(out) == {k: sorted(v) for k, v in expected.items()}

    # ------------------------------------------------------------------ failures

    def test_a_task_error_reaches_the_driver_as_itself_with_its_traceback(
        self, ctx: Context
    ) -> None:
        def reject_negative(x: int) -> int:
            if x < 0:
                raise ValueError(f"negative record {x}")
            return x

        with pytest.raises(ValueError, match="negative record -3") as info:
            ctx.parallelize([1, 2, -3, 4], 2).map(reject_negative).collect()
        cause = info.value.__cause__
        assert isinstance(cause, RemoteTraceback), "the remote traceback must be the __cause__"
        assert "reject_negative" in cause.text
        assert "negative record -3" in cause.text

    def test_the_context_stays_usable_after_a_failed_job(self, ctx: Context) -> None:
        with pytest.raises(ZeroDivisionError):
            ctx.parallelize([1, 0], 2).map(lambda x: 1 // x).collect()
        assert ctx.parallelize(range(10), 3).map(lambda x: x + 1).sum() == 55

    def test_transient_task_failures_are_retried(self, ctx: Context) -> None:
        def fails_twice(i: int, it: Iterator[int]) -> list[int]:
            from ember._engine.worker import current_task

            task = current_task()
            assert task is not None
            if i == 1 and task.attempt < 2:
                raise ConnectionError(f"transient failure, attempt {task.attempt}")
            return [x * 10 for x in it]

        out = ctx.parallelize(range(9), 3).mapPartitionsWithIndex(fails_twice).collect()
        assert out == [x * 10 for x in range(9)]

    # ------------------------------------------------------------------ shared variables

    def test_broadcast_values_reach_the_tasks(self, ctx: Context) -> None:
        lookup = ctx.broadcast({i: chr(ord("a") + i) for i in range(26)})
        out = ctx.parallelize(range(26), 4).map(lambda i: lookup.value[i]).collect()
        assert "".join(out) == "abcdefghijklmnopqrstuvwxyz"

    def test_accumulators_count_each_successful_task_once(self, ctx: Context) -> None:
        seen = ctx.accumulator(0)

        def flaky_count(i: int, it: Iterator[int]) -> Iterator[int]:
            from ember._engine.worker import current_task

            records = list(it)
            seen.add(len(records))
            task = current_task()
            if i == 0 and task is not None and task.attempt == 0:
                raise RuntimeError("first attempt fails after adding")
            return iter(records)

        assert ctx.parallelize(range(20), 4).mapPartitionsWithIndex(flaky_count).count() == 20
        assert seen.value == 20

    # ------------------------------------------------------------------ worker loss

    def test_a_worker_killed_mid_task_is_survived(
        self, ctx: Context, supports_worker_kill: bool, tmp_path: Path
    ) -> None:
        if not supports_worker_kill:
            pytest.skip("the executor does not support killing its workers (supports_worker_kill)")
        started, release = tmp_path / "started", tmp_path / "release"
        started.mkdir()

        def block(i: int, it: Iterator[int]) -> Iterator[int]:
            (started / f"{i}-{os.getpid()}-{uuid.uuid4().hex}").touch()
            deadline = time.monotonic() + 60
            while not release.exists():  # bounded: the test creates it
                if time.monotonic() > deadline:
                    raise TimeoutError("the contract test never released the task")
                time.sleep(0.005)
            return it

        def running_pids() -> set[int]:
            return {int(p.name.split("-")[1]) for p in started.iterdir()}

        rdd = ctx.parallelize(range(60), 2 * ctx.defaultParallelism).mapPartitionsWithIndex(block)
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = rdd.collect()
            except BaseException as exc:  # reported by the test below
                box["error"] = exc

        thread = threading.Thread(target=run, name="executor-contract-job")
        thread.start()
        try:
            busy = _wait_for(
                lambda: running_pids() & set(ctx._executor.worker_pids()), "a task to start"
            )
            victim = min(busy)
            os.kill(victim, signal.SIGKILL)
            _wait_for(lambda: _pid_gone(victim), "the killed worker to exit")
        finally:
            release.touch()
            thread.join(60)
        assert not thread.is_alive(), "the job did not finish after a worker was killed"
        assert "error" not in box, f"the job failed after a worker was killed: {box.get('error')!r}"
        assert box["result"] == list(range(60))
        assert victim not in ctx._executor.worker_pids()
        assert ctx.parallelize(range(6), 3).map(lambda x: -x).collect() == [0, -1, -2, -3, -4, -5]
