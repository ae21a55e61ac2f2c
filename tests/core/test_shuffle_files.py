"""Where the map side of a shuffle writes, and that what it writes reads back exactly."""

from __future__ import annotations

import operator

import pytest
from ember._engine.partitioning import HashPartitioner
from ember._engine.shuffle import (
    SMALL_MAP_OUTPUT_BYTES,
    Aggregator,
    ShuffleSpec,
    read_shuffle,
    write_shuffle,
)
from ember_pickle import PickleSerializer

ADD = Aggregator(None, operator.add, operator.add)


def _spec(tmp_path, aggregator=ADD, small=True, partitions=3):
    disk, memory = tmp_path / "disk", tmp_path / "memory"
    disk.mkdir(exist_ok=True)
    memory.mkdir(exist_ok=True)
    return ShuffleSpec(
        shuffle_id=7, partitioner=HashPartitioner(partitions), aggregator=aggregator,
        map_side_combine=aggregator is not None, directory=str(disk),
        small_directory=str(memory) if small else None, serializer=PickleSerializer(),
    )


def _read_all(outputs, spec):
    return {k: v for r in range(spec.partitioner.numPartitions)
            for k, v in read_shuffle(outputs, r, spec)}


def test_a_small_map_output_goes_to_the_memory_directory(tmp_path):
    spec = _spec(tmp_path)
    out = write_shuffle(iter([("a", 1), ("b", 2), ("a", 3)]), spec, 0, 0)
    assert out.path.startswith(str(tmp_path / "memory"))
    assert list((tmp_path / "disk").iterdir()) == []
    assert _read_all([out], spec) == {"a": 4, "b": 2}


def test_a_large_map_output_goes_to_disk(tmp_path):
    spec = _spec(tmp_path)
    big = "x" * 1000
    records = [(f"{i}{big}", i) for i in range(SMALL_MAP_OUTPUT_BYTES // 1000 + 10)]
    out = write_shuffle(iter(records), spec, 1, 0)
    assert out.path.startswith(str(tmp_path / "disk"))
    assert list((tmp_path / "memory").iterdir()) == []
    assert _read_all([out], spec) == dict(records)


def test_without_a_memory_directory_everything_goes_to_disk(tmp_path):
    spec = _spec(tmp_path, small=False)
    out = write_shuffle(iter([("a", 1)]), spec, 0, 0)
    assert out.path.startswith(str(tmp_path / "disk"))


@pytest.mark.parametrize("aggregator", [ADD, None])
def test_outputs_of_several_map_tasks_merge_by_key(tmp_path, aggregator):
    spec = _spec(tmp_path, aggregator=aggregator, partitions=4)
    chunks = [[(k % 13, 1) for k in range(m, 300, 3)] for m in range(3)]
    outs = [write_shuffle(iter(c), spec, m, 0) for m, c in enumerate(chunks)]
    got: dict = {}
    for r in range(4):
        for k, v in read_shuffle(outs, r, spec):
            assert spec.partitioner(k) == r
            got[k] = got.get(k, 0) + v
    expected: dict = {}
    for c in chunks:
        for k, v in c:
            expected[k] = expected.get(k, 0) + v
    assert got == expected
