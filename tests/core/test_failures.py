"""Task failures, retries, worker processes killed with SIGKILL, and errors for bad use.

Attempts are counted with files in ``tmp_path`` (appended to by whichever process runs the
attempt), so the counts hold across worker processes. Tests that kill a worker run on
``local[2]`` only: there is no worker process to kill with ``inline``.
"""

from __future__ import annotations

import operator
import os
import signal
import socket
import sys
import threading
import time
import types
import uuid
from pathlib import Path

import psutil
import pytest
from ember import Conf, Context
from ember.errors import RemoteTraceback, SerializationError, TaskError


@pytest.fixture
def sc(ember_context: Context, ember_master: str) -> Context:
    return ember_context


def _attempts(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


# --------------------------------------------------------------------------- retries


def test_a_failing_task_fails_the_job_with_the_users_error_after_max_failures(sc, tmp_path):
    log = tmp_path / "attempts.log"

    def explode_on_seven(x):
        if x == 7:
            with open(log, "a") as f:
                f.write("attempt\n")
            raise KeyError(f"record {x} is bad")
        return x

    with pytest.raises(KeyError, match="record 7 is bad") as info:
        sc.parallelize(range(10), 3).map(explode_on_seven).collect()
    assert len(_attempts(log)) == 4  # ember.task.maxFailures defaults to 4
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "explode_on_seven" in cause.text
    assert "record 7 is bad" in cause.text
    line = explode_on_seven.__code__.co_firstlineno + 4  # the raise statement
    assert f"line {line}" in cause.text
    # the context is still usable
    assert sc.parallelize(range(4), 2).map(lambda x: x + 1).collect() == [1, 2, 3, 4]


def test_max_failures_is_configurable(ember_master, tmp_path):
    log = tmp_path / "attempts.log"

    def always_fails(x):
        with open(log, "a") as f:
            f.write(f"{x}\n")
        raise RuntimeError("nope")

    conf = Conf().set("spark.task.maxFailures", "2")
    with Context(ember_master, "max-failures", conf) as ctx:
        with pytest.raises(RuntimeError, match="nope"):
            ctx.parallelize([1], 1).map(always_fails).collect()
    assert len(_attempts(log)) == 2


def test_a_task_failing_on_its_first_two_attempts_succeeds(sc, tmp_path):
    log = tmp_path / "attempts.log"
    seen = sc.accumulator(0)

    def flaky(i, it):
        records = list(it)
        seen.add(len(records))  # discarded with the failed attempts' updates
        if i == 1:
            with open(log, "a") as f:
                f.write("attempt\n")
            if len(log.read_text().split()) <= 2:  # not _attempts: workers cannot import it
                raise ConnectionError("transient")
        return [x * 10 for x in records]

    out = sc.parallelize(range(12), 3).mapPartitionsWithIndex(flaky).collect()
    assert out == [x * 10 for x in range(12)]
    assert len(_attempts(log)) == 3
    assert seen.value == 12  # counted once per successful task


def test_retries_in_a_shuffle_map_stage(sc, tmp_path):
    log = tmp_path / "attempts.log"

    def flaky_key(kv):
        if kv[1] == 5:
            with open(log, "a") as f:
                f.write("attempt\n")
            if len(log.read_text().split()) == 1:
                raise OSError("disk hiccup")
        return kv

    out = sc.parallelize([(i % 3, i) for i in range(10)], 4).map(flaky_key).reduceByKey(operator.add)
    assert dict(out.collect()) == {0: 18, 1: 12, 2: 15}
    assert len(_attempts(log)) == 2


def test_an_exception_that_cannot_be_pickled_comes_back_as_task_error(sc, ember_master):
    class Unpicklable(Exception):
        def __init__(self, code, detail):  # pickle calls cls(*args) with args == (code,)
            super().__init__(code)
            self.detail = detail

        def __str__(self):
            return f"code {self.args[0]}: {self.detail}"

    def fail(x):
        raise Unpicklable(42, "the widget broke")

    with pytest.raises(Exception) as info:
        sc.parallelize([1], 1).map(fail).collect()
    if ember_master == "inline":  # nothing is pickled in-process: the error itself
        assert type(info.value) is Unpicklable
    else:
        err = info.value
        assert isinstance(err, TaskError)
        assert err.type_name.endswith("Unpicklable")
        assert err.message == "code 42: the widget broke"
        assert "Unpicklable: code 42: the widget broke" in str(err)
        assert "the widget broke" in err.traceback_text
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "in fail" in info.value.__cause__.text


def test_a_result_that_cannot_be_sent_back_fails_the_job_clearly(sc, ember_master):
    rdd = sc.parallelize([1], 1).map(lambda x: threading.Lock())
    if ember_master == "inline":
        assert len(rdd.collect()) == 1
        return
    with pytest.raises(TypeError, match="pickle") as info:
        rdd.collect()
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert sc.parallelize([1, 2]).count() == 2


def test_a_function_the_workers_cannot_import_is_reported_as_a_task_error(sc, ember_master):
    # A module that exists only in the driver: cloudpickle sends its functions by reference.
    name = f"ember_phantom_{uuid.uuid4().hex[:8]}"
    module = types.ModuleType(name)
    exec("def double(x):\n    return 2 * x\n", module.__dict__)
    sys.modules[name] = module
    try:
        rdd = sc.parallelize([1, 2, 3], 2).map(module.double)
        if ember_master == "inline":
            assert rdd.collect() == [2, 4, 6]
            return
        with pytest.raises(ModuleNotFoundError, match=name) as info:
            rdd.collect()
        assert isinstance(info.value.__cause__, RemoteTraceback)
        notes = "\n".join(getattr(info.value, "__notes__", []))
        if sys.version_info >= (3, 11):
            assert "register_pickle_by_value" in notes
    finally:
        del sys.modules[name]


def test_lost_shuffle_files_are_recomputed_from_lineage(sc, ember_master):
    calls = sc.accumulator(0)

    def tracked(kv):
        calls.add(1)
        return kv

    reduced = sc.parallelize([(i % 4, i) for i in range(40)], 4).map(tracked).reduceByKey(operator.add)
    expected = {k: sum(i for i in range(40) if i % 4 == k) for k in range(4)}
    assert dict(reduced.collect()) == expected
    assert calls.value == 40
    assert dict(reduced.collect()) == expected  # map outputs reused, not recomputed
    assert calls.value == 40
    files = sorted(  # small map outputs live in the memory directory, large ones on disk
        [*Path(sc._local_dir).glob("shuffle-*.data"), *Path(sc._memory_dir).glob("shuffle-*.data")]
    )
    if ember_master == "inline":  # in-process shuffles keep their buckets in memory
        assert files == []
        return
    assert len(files) == 4
    files[1].unlink()
    assert dict(reduced.collect()) == expected  # the reduce fetch fails; map task 1 reruns
    assert calls.value == 50


# --------------------------------------------------------------------------- serialization


def test_a_function_capturing_a_lock_names_the_variable(sc, ember_master):
    guard = threading.Lock()
    rdd = sc.parallelize([1, 2], 2).map(lambda x: (x, guard.locked()))
    if ember_master == "inline":  # in-process: nothing needs pickling
        assert rdd.collect() == [(1, False), (2, False)]
        return
    with pytest.raises(SerializationError) as info:
        rdd.collect()
    msg = str(info.value)
    assert "'guard'" in msg
    assert "lock" in msg
    assert "inside the function" in msg  # says how to fix it
    assert isinstance(info.value, TypeError)


def test_a_function_capturing_a_socket_names_the_variable(sc, ember_master):
    with socket.socket() as conn:

        def send(it):
            for x in it:
                conn.getsockname()
                yield x

        rdd = sc.parallelize([1, 2], 2).mapPartitions(send)
        if ember_master == "inline":
            assert rdd.collect() == [1, 2]
            return
        with pytest.raises(SerializationError, match="'conn'") as info:
            rdd.collect()
        assert "socket" in str(info.value)
        assert "foreachPartition" in str(info.value)


# --------------------------------------------------------------------------- worker loss


def _wait_for(predicate, what: str, timeout: float = 30.0):
    """Poll ``predicate`` (state kept by other processes) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _blocking_partition(started: Path, release: Path):
    """A partition function that records (partition, pid), then waits for ``release``."""

    def run(i, it):
        (started / f"{i}-{os.getpid()}-{uuid.uuid4().hex}").touch()
        deadline = time.monotonic() + 60
        while not release.exists():  # bounded: the test creates the file
            if time.monotonic() > deadline:
                raise TimeoutError("the test never released the tasks")
            time.sleep(0.005)
        return it

    return run


def _started(started: Path) -> list[tuple[int, int]]:
    return [tuple(map(int, p.name.split("-")[:2])) for p in started.iterdir()]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _run_in_thread(fn):
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # re-raised by the test
            box["error"] = exc

    thread = threading.Thread(target=target, name="test-job")
    thread.start()
    return thread, box


def _kill_a_busy_worker(ctx: Context, started: Path, release: Path) -> int:
    """Wait until both workers run a task, SIGKILL one of them, then release the tasks."""
    busy = _wait_for(
        lambda: {pid for _, pid in _started(started)} if len({pid for _, pid in _started(started)}) >= 2 else None,
        "both workers to start a task",
    )
    live = set(ctx._executor.worker_pids())
    victim = sorted(busy & live)[0]
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: _gone(victim), "the killed worker to die")
    release.touch()
    return victim


def _assert_recovered(ctx: Context, victim: int, started: Path) -> None:
    # some partition ran again after the kill, on a process that is not the victim
    runs: dict[int, list[int]] = {}
    for part, pid in _started(started):
        runs.setdefault(part, []).append(pid)
    rerun = [p for p, pids in runs.items() if len(pids) > 1]
    assert rerun, runs
    assert all(victim in runs[p] for p in rerun)
    # the context still works, on two live workers, the replacement included
    assert ctx.parallelize(range(8), 4).map(lambda x: x * x).collect() == [x * x for x in range(8)]
    pids = ctx._executor.worker_pids()
    assert len(pids) == 2 and victim not in pids


def test_a_worker_killed_mid_stage_loses_nothing(tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    started.mkdir()
    with Context("local[2]", "kill-narrow") as ctx:
        records = ctx.accumulator(0)

        def count(x):
            records.add(1)
            return x * 3

        rdd = ctx.parallelize(range(100), 6).mapPartitionsWithIndex(
            _blocking_partition(started, release)
        ).map(count)
        thread, box = _run_in_thread(rdd.collect)
        try:
            victim = _kill_a_busy_worker(ctx, started, release)
        finally:
            release.touch()
            thread.join(60)
        assert not thread.is_alive()
        assert "error" not in box, box.get("error")
        assert box["result"] == [x * 3 for x in range(100)]
        assert records.value == 100  # lost attempts' updates are never merged
        _assert_recovered(ctx, victim, started)


def test_a_worker_killed_in_the_reduce_stage_of_a_shuffle_loses_nothing(tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    started.mkdir()
    pairs = [(f"k{i % 13}", i) for i in range(500)]
    expected = {}
    for k, v in pairs:
        expected[k] = expected.get(k, 0) + v
    with Context("local[2]", "kill-shuffle") as ctx:
        rdd = (
            ctx.parallelize(pairs, 5)
            .reduceByKey(operator.add, 4)
            .mapPartitionsWithIndex(_blocking_partition(started, release))
        )
        thread, box = _run_in_thread(rdd.collect)
        try:
            victim = _kill_a_busy_worker(ctx, started, release)
        finally:
            release.touch()
            thread.join(60)
        assert not thread.is_alive()
        assert "error" not in box, box.get("error")
        out = box["result"]
        assert len(out) == len(expected)
        assert dict(out) == expected
        _assert_recovered(ctx, victim, started)
