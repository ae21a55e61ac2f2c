"""What the Dask executor promises beyond the contract: what travels where, and how often."""

from __future__ import annotations

import operator
import os
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from ember import Context, StorageLevel
from ember._engine.worker import run_task
from ember.executors import create_executor
from ember_dask import DaskExecutor
from ember_dask._worker import DaskMapOutput

MASTER = "dask-local[2]"


@pytest.fixture
def sc() -> Iterator[Context]:
    """A context on the pooled two-worker local cluster."""
    with Context(MASTER, "dask-executor-test") as context:
        yield context


class Sent:
    """Records what each Dask task carried, by unpickling what the executor submits."""

    def __init__(self, executor: DaskExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tasks: list[tuple[str | None, Any, tuple]] = []
        client = executor._client
        submit = client.submit

        def spy(fn: Any, data: bytes, *rest: Any, workers: Any = None, **kw: Any) -> Any:
            task_fn, args = pickle.loads(data)
            self.tasks.append((workers[0] if workers else None, task_fn, args))
            return submit(fn, data, *rest, workers=workers, **kw)

        monkeypatch.setattr(client, "submit", spy)

    def stage_blobs(self) -> list[tuple[str | None, str]]:
        """(worker, stage key) of every task that carried its stage's function."""
        return [(w, args[0]) for w, fn, args in self.tasks
                if fn is run_task and isinstance(args[1], bytes)]


def test_the_master_names_the_executor_and_its_slots(sc: Context) -> None:
    assert isinstance(sc._executor, DaskExecutor)
    assert sc.defaultParallelism == 2
    assert len(sc._executor.worker_pids()) == 2
    assert os.getpid() not in sc._executor.worker_pids()
    assert sc._executor.shares_driver_files is False


def test_a_malformed_dask_master_is_a_clear_error(tmp_path: Any) -> None:
    from ember.conf import Conf

    with pytest.raises(ValueError, match="dask-local"):
        create_executor("dask-local[x]", Conf(), str(tmp_path))
    with pytest.raises(ConnectionError, match="dask scheduler"):
        create_executor("dask://127.0.0.1:9", Conf().set("ember.dask.timeout", "2"),
                        str(tmp_path))


def test_each_worker_gets_a_stage_function_at_most_once(
    sc: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = Sent(sc._executor, monkeypatch)
    rdd = sc.parallelize(range(400), 8).map(lambda x: x * 3).filter(lambda x: x % 2)
    assert rdd.count() == 200
    assert rdd.count() == 200  # the same stage again: nothing new to send
    blobs = sent.stage_blobs()
    assert len(blobs) == len(set(blobs)), "a worker got a stage's function twice"
    assert len(blobs) <= 2
    assert len(sent.tasks) == 16


def test_shuffle_data_stays_on_the_workers(sc: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = Sent(sc._executor, monkeypatch)
    words = [f"w{i % 50}" for i in range(5000)]
    shuffled = sc.parallelize(words, 4).map(lambda w: (w, 1)).reduceByKey(operator.add, 3)
    assert dict(shuffled.collect()) == {f"w{i}": 100 for i in range(50)}
    outputs = [o for o in shuffled._outputs]
    assert all(isinstance(o, DaskMapOutput) for o in outputs)
    assert {o.address for o in outputs} <= set(sc._executor._slots)
    # What a reduce task carries is the outputs' addresses, never their records.
    reduce_args = [args for _, fn, args in sent.tasks if fn is run_task][-3:]
    assert all(len(pickle.dumps(args)) < 2000 for args in reduce_args)


@pytest.mark.parametrize("level", [StorageLevel.MEMORY_ONLY_SER, StorageLevel.DISK_ONLY,
                                   StorageLevel.MEMORY_AND_DISK])
def test_persisted_partitions_stay_in_worker_memory(sc: Context, level: StorageLevel) -> None:
    calls = sc.accumulator(0)

    def counted(x: int) -> int:
        calls.add(1)
        return x + 1

    rdd = sc.parallelize(range(100), 4).map(counted).persist(level)
    assert rdd.sum() == 5050
    assert rdd.sum() == 5050
    assert calls.value == 100, "the second job recomputed instead of reading the cache"
    memory_dir, disk_dir = sc._memory_dir, sc._disk_dir
    assert os.listdir(memory_dir) == [] and os.listdir(disk_dir) == [], "no driver files"


def test_broadcasts_are_scattered_once_and_released(sc: Context) -> None:
    from ember_dask._executor import _broadcasts

    table = sc.broadcast({i: i * i for i in range(1000)})
    rdd = sc.parallelize(range(1000), 4).map(lambda i: table.value[i])
    assert rdd.sum() == sum(i * i for i in range(1000))
    assert rdd.sum() == sum(i * i for i in range(1000))
    keys = [k for k, v in _broadcasts.items() if v[2] is sc._executor]
    assert len(keys) == 1
    assert not os.path.exists(os.path.join(sc._local_dir, "broadcast-0"))
    table.destroy()
    assert keys[0] not in _broadcasts


def test_workers_with_other_versions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import ember_dask._executor as executor_module

    real = executor_module.environment()
    driver = os.getpid()

    def environment() -> dict[str, str]:  # the driver pretends to have another cloudpickle
        return {**real, "cloudpickle": "0.0.1"} if os.getpid() == driver else real

    monkeypatch.setattr(executor_module, "environment", environment)
    with pytest.raises(RuntimeError, match=r"cloudpickle.*install matching versions"):
        Context(MASTER, "dask-version-mismatch")
    monkeypatch.undo()
    with Context(MASTER, "dask-after-mismatch") as sc:  # nothing was left half started
        assert sc.parallelize(range(4), 2).sum() == 6


def test_the_same_streaming_program_gives_the_same_batches_as_in_process() -> None:
    from ember.testing import run_batches

    def build(stream: Any) -> Any:
        pairs = stream.flatMap(str.split).map(lambda w: (w, 1))
        windowed = pairs.reduceByKeyAndWindow(operator.add, operator.sub, 3.0, 1.0)
        totals = pairs.updateStateByKey(lambda new, old: sum(new) + (old or 0))
        return windowed.join(totals).filter(lambda kv: kv[1][0] > 0)

    batches = [[f"w{(i * 7 + j) % 13} w{j % 5}" for j in range(30)] for i in range(6)]
    expected = run_batches(build, batches, master="inline", ordered=False)
    assert run_batches(build, batches, master=MASTER, ordered=False) == expected
    assert any(expected), "the program must produce something to compare"


def test_blocks_received_on_the_driver_are_processed_on_the_workers() -> None:
    from ember.streaming import StreamingContext
    from ember.testing import ManualClock, advance_batches
    from ember.testing.sources import TestingFeed, TestingSource

    feed = TestingFeed()
    with Context(MASTER, "dask-receiver") as sc:
        ssc = StreamingContext(sc, 1.0, clock=ManualClock())
        seen: list[tuple[dict[str, int], set[int]]] = []

        def keep(rdd: Any) -> None:
            counts = rdd.collect()
            pids = set(rdd.map(lambda _kv: os.getpid()).collect())
            seen.append((dict(counts), pids))

        (TestingSource(feed=feed, method="storeMany", batch_size=50).createStream(ssc)
         .map(lambda w: (w, 1)).reduceByKey(operator.add).foreachRDD(keep))
        ssc.start()
        try:
            words = [f"w{i % 7}" for i in range(700)]
            feed.send(words)
            assert feed.wait_delivered(len(words), 30)
            advance_batches(ssc, 1, timeout=60)
        finally:
            ssc.stop(stopSparkContext=False)
    total: dict[str, int] = {}
    for counts, pids in seen:
        for w, c in counts.items():
            total[w] = total.get(w, 0) + c
        assert os.getpid() not in pids
    assert total == {f"w{i}": 100 for i in range(7)}
