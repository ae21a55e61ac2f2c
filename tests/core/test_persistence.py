"""persist/cache/unpersist at every storage level, and checkpoint() truncating lineage.

"Computed once" is proved two independent ways: an accumulator incremented by the map
function, and a side effect the workers append to a file in ``tmp_path``.
"""

from __future__ import annotations

import operator
import os

import pytest
from ember import Context, StorageLevel

LEVELS = {
    "MEMORY_ONLY": StorageLevel.MEMORY_ONLY,
    "MEMORY_ONLY_SER": StorageLevel.MEMORY_ONLY_SER,
    "DISK_ONLY": StorageLevel.DISK_ONLY,
    "MEMORY_AND_DISK": StorageLevel.MEMORY_AND_DISK,
    "MEMORY_AND_DISK_SER": StorageLevel.MEMORY_AND_DISK_SER,
}


@pytest.fixture
def sc(ember_context: Context, ember_master: str) -> Context:
    return ember_context


@pytest.mark.parametrize("level_name", list(LEVELS))
def test_a_persisted_rdd_is_computed_once(sc, level_name):
    level = LEVELS[level_name]
    calls = sc.accumulator(0)

    def tracked(x):
        calls.add(1)
        return (x % 5, [x])

    rdd = sc.parallelize(range(60), 8).map(tracked).persist(level)
    assert rdd.is_cached
    assert rdd.getStorageLevel() == level
    expected = [(x % 5, [x]) for x in range(60)]
    assert rdd.collect() == expected
    assert calls.value == 60
    # more actions, and new RDDs built on top of it, read the stored partitions
    assert rdd.count() == 60
    assert rdd.collect() == expected
    assert rdd.map(lambda kv: kv[1][0]).sum() == sum(range(60))
    grouped = rdd.reduceByKey(operator.add).mapValues(sorted).collect()
    assert dict(grouped) == {k: [x for x in range(60) if x % 5 == k] for k in range(5)}
    assert calls.value == 60
    # unpersist: computed from lineage again
    rdd.unpersist()
    assert not rdd.is_cached
    assert rdd.getStorageLevel() == StorageLevel.NONE
    assert rdd.collect() == expected
    assert calls.value == 120


def test_cached_records_are_not_shared_with_the_consumers(sc):
    """A consumer that mutates the records it reads must not damage the cached copy."""
    rdd = sc.parallelize(range(6), 2).map(lambda x: [x]).persist(StorageLevel.MEMORY_ONLY_SER)
    assert rdd.collect() == [[x] for x in range(6)]
    assert rdd.map(lambda lst: lst.append(0) or lst).collect() == [[x, 0] for x in range(6)]
    assert rdd.collect() == [[x] for x in range(6)]


def test_cache_is_memory_only_and_a_file_side_effect_shows_one_computation(sc, tmp_path):
    log = tmp_path / "computed.log"

    def record(i, it):
        with open(log, "a") as f:
            f.write(f"{i}\n")
        return it

    rdd = sc.parallelize(range(40), 4).mapPartitionsWithIndex(record).cache()
    assert rdd.getStorageLevel() == StorageLevel.MEMORY_ONLY
    for _ in range(3):
        assert rdd.collect() == list(range(40))
    assert sorted(log.read_text().split()) == ["0", "1", "2", "3"]


def test_persist_level_cannot_change_without_unpersist(sc):
    rdd = sc.parallelize([1]).persist(StorageLevel.DISK_ONLY)
    assert rdd.persist(StorageLevel.DISK_ONLY) is rdd  # the same level again is fine
    with pytest.raises(ValueError, match="unpersist"):
        rdd.persist(StorageLevel.MEMORY_ONLY)
    rdd.unpersist()
    rdd.persist(StorageLevel.MEMORY_ONLY)
    with pytest.raises(TypeError, match="StorageLevel"):
        rdd.persist("MEMORY_ONLY")


def test_a_persisted_shuffle_result_is_not_recomputed(sc):
    calls = sc.accumulator(0)

    def tracked(kv):
        calls.add(1)
        return kv

    reduced = (
        sc.parallelize([(i % 3, i) for i in range(30)], 3)
        .map(tracked)
        .reduceByKey(operator.add, 2)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    expected = {k: sum(i for i in range(30) if i % 3 == k) for k in range(3)}
    assert dict(reduced.collect()) == expected
    assert dict(reduced.mapValues(lambda v: v * 2).collect()) == {k: 2 * v for k, v in expected.items()}
    assert reduced.count() == 3
    assert calls.value == 30


def test_storage_level_names():
    assert str(StorageLevel.MEMORY_ONLY) == "Memory Deserialized 1x Replicated"
    assert str(StorageLevel.DISK_ONLY) == "Disk Serialized 1x Replicated"
    assert StorageLevel.MEMORY_AND_DISK.useDisk and StorageLevel.MEMORY_AND_DISK.useMemory
    assert not StorageLevel.MEMORY_ONLY_SER.deserialized


# --------------------------------------------------------------------------- checkpoint


def test_checkpoint_truncates_lineage_and_keeps_results(sc, tmp_path):
    calls = sc.accumulator(0)

    def tracked(x):
        calls.add(1)
        return x * 2

    rdd = (
        sc.parallelize(range(20), 4)
        .map(tracked)
        .map(lambda x: (x % 3, x))
        .reduceByKey(operator.add)
        .mapValues(lambda v: v + 1)
    )
    expected = sorted(rdd.collect())
    assert calls.value == 20
    before = rdd.toDebugString().decode().splitlines()
    assert len(before) == 4  # map side, shuffle, reduce side, source
    rdd.checkpoint()
    assert not rdd.isCheckpointed()
    assert rdd.getCheckpointFile() is None
    assert sorted(rdd.collect()) == expected  # this job saves it, after computing it
    assert rdd.isCheckpointed()
    after = rdd.toDebugString().decode().splitlines()
    assert len(after) == 1 < len(before)
    saved = rdd.getCheckpointFile()
    assert saved is not None and saved.startswith(str(tmp_path / "checkpoints"))
    assert sorted(os.listdir(saved)) == [f"part-{i:05d}" for i in range(rdd.getNumPartitions())]
    n = calls.value
    # later jobs read the checkpoint files: the lineage under it is not run again
    assert sorted(rdd.collect()) == expected
    assert dict(rdd.mapValues(lambda v: -v).collect()) == {k: -v for k, v in expected}
    assert calls.value == n


def test_checkpoint_of_a_persisted_rdd_computes_it_once(sc):
    calls = sc.accumulator(0)

    def tracked(x):
        calls.add(1)
        return x

    rdd = sc.parallelize(range(10), 2).map(tracked).cache()
    rdd.checkpoint()
    assert rdd.count() == 10
    assert rdd.isCheckpointed()
    assert calls.value == 10
    assert rdd.collect() == list(range(10))
    assert calls.value == 10


def test_checkpoint_needs_a_directory(tmp_path, ember_master):
    with Context(ember_master, "no-checkpoint-dir") as ctx:
        assert ctx.getCheckpointDir() is None
        with pytest.raises(ValueError, match="setCheckpointDir"):
            ctx.parallelize([1]).checkpoint()
        ctx.setCheckpointDir(str(tmp_path / "cp"))
        assert ctx.getCheckpointDir().startswith(str(tmp_path / "cp"))
        rdd = ctx.parallelize([3, 1, 2], 2)
        rdd.checkpoint()
        assert rdd.collect() == [3, 1, 2]
        assert rdd.isCheckpointed()
        assert rdd.collect() == [3, 1, 2]
