"""``Context``: making RDDs, broadcasts and accumulators; lifecycle; master URLs; no leaks."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from ember import Accumulator, AccumulatorParam, Broadcast, Conf, Context
from ember.errors import ContextError, PluginNotFoundError, SerializationError


@pytest.fixture
def sc(ember_context: Context, ember_master: str) -> Context:
    return ember_context


# --------------------------------------------------------------------------- masters


@pytest.mark.parametrize(
    ("master", "slots"),
    [("inline", 1), ("local", 1), ("local[1]", 1), ("local[2]", 2), ("local[*]", os.cpu_count())],
)
def test_default_parallelism_follows_the_master(master, slots):
    with Context(master, "parallelism") as ctx:
        assert ctx.defaultParallelism == slots
        assert ctx.defaultMinPartitions == min(slots, 2)
        assert ctx.parallelize(range(10)).getNumPartitions() == slots
        assert ctx.master == master


def test_an_unknown_executor_names_the_entry_point_group():
    with pytest.raises(PluginNotFoundError) as info:
        Context("foo[2]", "unknown")
    assert "'foo'" in str(info.value)
    assert "ember.executors" in str(info.value)
    assert "local" in str(info.value)  # lists what is installed
    with Context("inline") as ctx:  # the failed one is not left active
        assert ctx.parallelize([1]).count() == 1


@pytest.mark.parametrize("master", ["local[0]", "local[x]", "local[-1]", "local[]", "local[2"])
def test_malformed_local_masters_are_value_errors(master):
    with pytest.raises(ValueError, match="unknown master"):
        Context(master, "bad")


@pytest.mark.parametrize("master", ["", "???", "2[local]"])
def test_masters_that_are_not_urls_are_value_errors(master):
    with pytest.raises(ValueError, match="unknown master"):
        Context(master, "bad")


# --------------------------------------------------------------------------- lifecycle


def test_stop_is_idempotent_and_a_stopped_context_refuses_work(ember_master):
    ctx = Context(ember_master, "stopping")
    rdd = ctx.parallelize([1, 2, 3])
    assert rdd.count() == 3
    ctx.stop()
    ctx.stop()
    for use in (
        lambda: ctx.parallelize([1]),
        lambda: rdd.count(),
        lambda: rdd.collect(),
        lambda: ctx.range(3),
        lambda: ctx.emptyRDD(),
        lambda: ctx.broadcast(1),
        lambda: ctx.accumulator(0),
        lambda: ctx.union([rdd]),
    ):
        with pytest.raises(ContextError, match="has been stopped"):
            use()


def test_context_manager_stops_and_allows_the_next_context(ember_master):
    with Context(ember_master, "first") as ctx:
        assert ctx.parallelize(range(3)).sum() == 3
    with pytest.raises(ContextError):
        ctx.parallelize([1])
    with Context(ember_master, "second") as ctx2:
        assert ctx2.parallelize(range(4)).sum() == 6


def test_only_one_active_context(ember_master):
    with Context(ember_master, "one") as ctx:
        with pytest.raises(ContextError, match="already running") as info:
            Context("inline", "two")
        assert "getOrCreate" in str(info.value)
        assert "'one'" in str(info.value)
        assert Context.getOrCreate() is ctx
        assert ctx.parallelize([1, 2]).count() == 2  # unharmed


def test_get_or_create_makes_a_context_from_the_conf_when_none_is_active():
    conf = Conf().setMaster("inline").setAppName("made")
    ctx = Context.getOrCreate(conf)
    try:
        assert ctx.appName == "made"
        assert Context.getOrCreate() is ctx
    finally:
        ctx.stop()
    assert Context._get_active() is None


def test_context_attributes(sc):
    assert "Context" in repr(sc)
    assert sc.appName.startswith("test-")
    assert isinstance(sc.version, str)
    assert Context._get_active() is sc


def test_a_new_context_never_sees_a_previous_contexts_cache_or_broadcasts(ember_master):
    # RDD and broadcast ids restart at 0 in every context, while worker processes (and, for
    # inline, the driver process) live on: nothing keyed by those ids may be reused.
    for value in ("first", "second"):
        with Context(ember_master, value) as ctx:
            cached = ctx.parallelize([value] * 3, 2).cache()
            assert cached.collect() == [value] * 3
            b = ctx.broadcast(value)
            assert ctx.parallelize([0, 1], 2).map(lambda _, b=b: b.value).collect() == [value] * 2
            assert cached.collect() == [value] * 3


# --------------------------------------------------------------------------- making RDDs


def test_union_of_several_rdds(sc):
    a, b, c = sc.parallelize([1, 2], 2), sc.parallelize([3], 1), sc.emptyRDD()
    u = sc.union([a, b, c, a])
    assert u.collect() == [1, 2, 3, 1, 2]
    assert u.getNumPartitions() == 5
    with pytest.raises(ValueError, match="at least one RDD"):
        sc.union([])
    with pytest.raises(TypeError, match="expects RDDs"):
        sc.union([a, [1, 2]])


def test_union_refuses_an_rdd_of_another_context(ember_master):
    with Context(ember_master, "old") as old:
        stale = old.parallelize([1])
    with Context(ember_master, "new") as ctx:
        with pytest.raises(ValueError, match="belongs to another Context"):
            ctx.union([ctx.parallelize([2]), stale])


# --------------------------------------------------------------------------- broadcast


def test_broadcast_values_reach_every_task(sc):
    table = {i: str(i) * 3 for i in range(1000)}
    b = sc.broadcast(table)
    assert isinstance(b, Broadcast)
    assert b.value is table  # on the driver: the value itself
    out = sc.parallelize(range(0, 1000, 100), 4).map(lambda i: b.value[i]).collect()
    assert out == [table[i] for i in range(0, 1000, 100)]
    # used again by another job, and by a shuffle
    assert sc.parallelize([(1, 1), (2, 2)], 2).reduceByKey(lambda x, y: x + y).mapValues(
        lambda v: b.value[v]
    ).collectAsMap() == {1: "111", 2: "222"}


def test_broadcast_unpersist_and_destroy(sc):
    b = sc.broadcast([1, 2, 3])
    assert sc.parallelize([0], 1).map(lambda _: sum(b.value)).collect() == [6]
    b.unpersist()
    assert sc.parallelize([0], 1).map(lambda _: len(b.value)).collect() == [3]
    b.destroy()
    with pytest.raises(RuntimeError, match="destroyed"):
        _ = b.value
    # inline: the task fails reading it; local[2]: the function cannot be sent at all
    with pytest.raises((RuntimeError, SerializationError), match="destroyed"):
        sc.parallelize([0], 1).map(lambda _: b.value).collect()


# --------------------------------------------------------------------------- accumulators


def test_accumulators_of_numbers_and_lists(sc):
    total = sc.accumulator(0)
    fsum = sc.accumulator(0.0)
    seen = sc.accumulator([])
    assert isinstance(total, Accumulator)

    def visit(x):
        nonlocal total
        total += x
        fsum.add(x / 2)
        seen.add([x])

    sc.parallelize(range(10), 3).foreach(visit)
    assert total.value == 45
    assert fsum.value == 22.5
    assert sorted(seen.value) == list(range(10))
    total.add(5)  # on the driver
    assert total.value == 50
    total.value = 0
    assert total.value == 0


def test_custom_accumulator_param(sc):
    class MaxParam(AccumulatorParam):
        def zero(self, value):
            return float("-inf")

        def addInPlace(self, value1, value2):
            return max(value1, value2)

    biggest = sc.accumulator(float("-inf"), MaxParam())
    sc.parallelize([3, 9, 2, 7], 2).foreach(lambda x: biggest.add(x))
    assert biggest.value == 9


def test_accumulator_value_cannot_be_read_in_a_task(sc):
    acc = sc.accumulator(0)
    with pytest.raises(RuntimeError, match="cannot be read inside a task"):
        sc.parallelize([1], 1).map(lambda x: acc.value).collect()


def test_accumulator_without_a_param_for_its_type(sc):
    with pytest.raises(TypeError, match="AccumulatorParam"):
        sc.accumulator({"a": 1})


# --------------------------------------------------------------------------- concurrency


def test_jobs_from_several_threads_share_the_context(sc):
    """Streaming runs one job per output operation, possibly at once: results stay exact."""
    records = sc.accumulator(0)
    errors: list[BaseException] = []

    def tracked(x):
        records.add(1)
        return (x % 5, x)

    def work(base: int) -> None:
        try:
            for _ in range(8):
                data = range(base, base + 50)
                out = sc.parallelize(data, 3).map(tracked).reduceByKey(lambda a, b: a + b, 2)
                expected: dict[int, int] = {}
                for x in data:
                    expected[x % 5] = expected.get(x % 5, 0) + x
                assert dict(out.collect()) == expected
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(b,), name=f"job-{b}") for b in (0, 100, 1000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert records.value == 3 * 8 * 50


# --------------------------------------------------------------------------- leaks


def test_a_stopped_context_leaves_only_the_pooled_workers(ember_master, ember_no_leaks, tmp_path):
    with Context(ember_master, "leaks") as ctx:
        ctx.setCheckpointDir(str(tmp_path / "cp"))
        b = ctx.broadcast({"k": 1})
        rdd = ctx.parallelize([(i % 4, i) for i in range(100)], 4).cache()
        out = rdd.reduceByKey(lambda x, y: x + y).mapValues(lambda v: v + b.value["k"])
        out.checkpoint()
        assert len(out.collect()) == 4
        local_dir = ctx._local_dir
    assert not os.path.exists(local_dir)  # temporary files removed


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_local_workers_run_under_the_batch_scheduling_policy():
    with Context("local[2]", "sched") as ctx:
        assert ctx.parallelize([1, 2], 2).map(lambda x: os.getpid()).distinct().count() >= 1
        pids = ctx._executor.worker_pids()
        assert pids
        assert {os.sched_getscheduler(pid) for pid in pids} == {os.SCHED_BATCH}


@pytest.mark.skipif(not os.access("/dev/shm", os.W_OK), reason="needs a writable /dev/shm")
def test_directories_of_dead_drivers_are_removed_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tmp = Path(tempfile.gettempdir())
        stale = [Path("/dev/shm") / f"ember-blocks-{dead.pid}-test", tmp / f"ember-{dead.pid}-t"]
        kept = [Path("/dev/shm") / f"ember-blocks-{alive.pid}-test", tmp / f"ember-{alive.pid}-t"]
        for d in stale + kept:
            d.mkdir()
            (d / "shuffle-0-0-0.data").write_bytes(b"x" * 100)
        with Context("local[2]", "stale") as ctx:
            assert Path(ctx._memory_dir).name.startswith(f"ember-blocks-{os.getpid()}-")
            assert Path(ctx._local_dir).name.startswith(f"ember-{os.getpid()}-")
        assert not any(d.exists() for d in stale), "a dead driver's directories: removed"
        assert all(d.exists() for d in kept), "a live process's directories are its own"
    finally:
        alive.kill()
        alive.wait()
        for d in stale + kept:
            shutil.rmtree(d, ignore_errors=True)


def test_a_context_never_stopped_leaves_no_directories_at_exit(tmp_path):
    import subprocess
    import sys

    code = ("from ember import Context; ctx = Context('local[2]', 'x'); "
            "print(ctx._local_dir); print(ctx._memory_dir); "
            "ctx.parallelize(range(10), 2).map(lambda x: (x % 3, 1)).reduceByKey(int.__add__).collect()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert len(out) == 2
    assert not any(os.path.exists(p) for p in out)
