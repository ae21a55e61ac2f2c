"""The RDD's narrow transformations and actions, each against a plain-Python expectation.

Every test runs on the ``inline`` executor and on ``local[2]`` (two worker processes).
Functions shipped to workers are lambdas or nested functions: a module-level function of a
test file is pickled by reference, and workers cannot import test files.
"""

from __future__ import annotations

import functools
import operator
from collections import Counter

import pytest
from ember import RDD, Context


@pytest.fixture
def sc(ember_context: Context, ember_master: str) -> Context:
    return ember_context


# --------------------------------------------------------------------------- parallelize


@pytest.mark.parametrize(
    ("data", "slices", "expected"),
    [
        (range(1, 5), 2, [[1, 2], [3, 4]]),
        (list(range(5)), 3, [[0], [1, 2], [3, 4]]),
        (list(range(10)), 4, [[0, 1], [2, 3, 4], [5, 6], [7, 8, 9]]),
        ([1, 2], 4, [[], [1], [], [2]]),
        ([], 3, [[], [], []]),
        (range(0, 20, 5), 3, [[0], [5], [10, 15]]),
        (("a", "b", "c"), 1, [["a", "b", "c"]]),
    ],
)
def test_parallelize_cuts_contiguous_slices_like_pyspark(sc, data, slices, expected):
    rdd = sc.parallelize(data, slices)
    assert rdd.getNumPartitions() == slices
    assert rdd.glom().collect() == expected


def test_parallelize_defaults_to_default_parallelism(sc):
    rdd = sc.parallelize(range(10))
    assert rdd.getNumPartitions() == sc.defaultParallelism
    assert rdd.collect() == list(range(10))


def test_parallelize_accepts_generators_and_keeps_order(sc):
    assert sc.parallelize((x * x for x in range(6)), 4).collect() == [0, 1, 4, 9, 16, 25]


def test_collect_returns_elements_in_partition_order(sc):
    data = [f"r{i}" for i in range(37)]
    rdd = sc.parallelize(data, 7)
    assert rdd.collect() == data
    assert [x for part in rdd.glom().collect() for x in part] == data


def test_range_and_empty_rdd(sc):
    assert sc.range(5).collect() == [0, 1, 2, 3, 4]
    assert sc.range(2, 11, 3, numSlices=2).glom().collect() == [[2], [5, 8]]
    empty = sc.emptyRDD()
    assert empty.getNumPartitions() == 0
    assert empty.collect() == []
    assert empty.count() == 0
    assert empty.isEmpty()


# --------------------------------------------------------------------------- narrow transformations


def test_map_flat_map_filter(sc):
    data = list(range(-5, 15))
    rdd = sc.parallelize(data, 3)
    assert rdd.map(lambda x: x * 3).collect() == [x * 3 for x in data]
    assert rdd.flatMap(lambda x: [x] * (x % 3)).collect() == [y for x in data for y in [x] * (x % 3)]
    assert rdd.filter(lambda x: x % 4 == 1).collect() == [x for x in data if x % 4 == 1]


def test_chained_narrow_steps_are_fused_and_correct(sc):
    data = list(range(100))
    rdd = (
        sc.parallelize(data, 4)
        .map(lambda x: x + 1)
        .filter(lambda x: x % 3)
        .flatMap(lambda x: (x, -x))
        .map(str)
    )
    expected = [str(y) for x in data for y in ((x + 1), -(x + 1)) if (x + 1) % 3]
    assert rdd.collect() == expected
    # One fused node over the source: the lineage has two RDDs, not five.
    assert len(rdd.toDebugString().splitlines()) == 2


def test_map_partitions_and_with_index(sc):
    rdd = sc.parallelize(range(10), 3)
    assert rdd.mapPartitions(lambda it: [sum(it)]).collect() == [3, 12, 30]
    assert rdd.mapPartitionsWithIndex(lambda i, it: [(i, len(list(it)))]).collect() == [
        (0, 3), (1, 3), (2, 4),
    ]
    # A partition function may return any iterable, including a generator.
    assert rdd.mapPartitions(lambda it: (x * 2 for x in it if x > 6)).collect() == [14, 16, 18]


def test_glom_returns_one_list_per_partition(sc):
    assert sc.parallelize(range(1, 5), 2).glom().collect() == [[1, 2], [3, 4]]
    assert sc.parallelize([], 2).glom().collect() == [[], []]


def test_union_keeps_partitions_in_order(sc):
    a = sc.parallelize([1, 2, 3], 2)
    b = sc.parallelize(["x", "y"], 3)
    u = a.union(b)
    assert u.getNumPartitions() == 5
    assert u.collect() == [1, 2, 3, "x", "y"]
    assert u.glom().collect() == [[1], [2, 3], [], ["x"], ["y"]]
    assert (a + a).collect() == [1, 2, 3, 1, 2, 3]
    assert sc.union([a, b, a]).collect() == [1, 2, 3, "x", "y", 1, 2, 3]


def test_distinct(sc):
    data = [3, 1, 3, None, "a", "a", (1, 2), (1, 2), 1, 0]
    out = sc.parallelize(data, 3).distinct().collect()
    assert len(out) == len(set(data))
    assert set(out) == set(data)
    assert sorted(sc.parallelize(data, 3).distinct(5).filter(lambda x: isinstance(x, int)).collect()) == [0, 1, 3]


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_repartition_gives_exactly_n_balanced_partitions(sc, n):
    data = list(range(40))
    rdd = sc.parallelize(data, 3).repartition(n)
    parts = rdd.glom().collect()
    assert len(parts) == n
    assert Counter(x for p in parts for x in p) == Counter(data)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 3  # spread about evenly


def test_coalesce_merges_adjacent_partitions_without_reordering(sc):
    data = list(range(23))
    rdd = sc.parallelize(data, 6)
    c = rdd.coalesce(2)
    assert c.getNumPartitions() == 2
    assert c.collect() == data
    assert c.glom().collect() == [list(range(0, 11)), list(range(11, 23))]
    assert rdd.coalesce(10).getNumPartitions() == 6  # no shuffle: cannot grow
    grown = rdd.coalesce(10, shuffle=True)
    assert grown.getNumPartitions() == 10
    assert sorted(grown.collect()) == data


def test_key_by_zip_with_index_and_sort_by(sc):
    words = ["pear", "fig", "banana", "kiwi", "apple"]
    rdd = sc.parallelize(words, 2)
    assert rdd.keyBy(len).collect() == [(len(w), w) for w in words]
    assert rdd.zipWithIndex().collect() == [(w, i) for i, w in enumerate(words)]
    assert rdd.sortBy(lambda w: w).collect() == sorted(words)
    assert rdd.sortBy(len, ascending=False, numPartitions=3).map(len).collect() == sorted(
        map(len, words), reverse=True
    )


def test_sample_is_a_deterministic_subset_for_a_seed(sc):
    rdd = sc.parallelize(range(1000), 4)
    s1 = rdd.sample(False, 0.1, seed=3).collect()
    assert s1 == rdd.sample(False, 0.1, seed=3).collect()
    assert set(s1) <= set(range(1000))
    assert 40 < len(s1) < 200
    assert s1 == sorted(s1)  # a sample keeps the order


# --------------------------------------------------------------------------- actions


def test_count_take_first(sc):
    data = list(range(50))
    rdd = sc.parallelize(data, 7)
    assert rdd.count() == 50
    assert rdd.take(0) == []
    assert rdd.take(3) == [0, 1, 2]
    assert rdd.take(20) == data[:20]
    assert rdd.take(500) == data
    assert rdd.first() == 0
    # take scans past empty partitions
    sparse = sc.parallelize([7, 8], 6)
    assert sparse.take(2) == [7, 8]
    assert sparse.first() == 7


def test_take_first_reduce_on_empty_rdds_raise_as_pyspark(sc):
    empty = sc.parallelize([], 3)
    assert empty.take(5) == []
    assert empty.isEmpty()
    with pytest.raises(ValueError, match="RDD is empty"):
        empty.first()
    with pytest.raises(ValueError, match=r"Can not reduce\(\) empty RDD"):
        empty.reduce(operator.add)
    with pytest.raises(ValueError, match="RDD is empty"):
        sc.emptyRDD().first()


def test_reduce_fold_aggregate(sc):
    data = list(range(1, 11))
    rdd = sc.parallelize(data, 3)
    assert rdd.reduce(operator.add) == 55
    assert rdd.reduce(max) == 10
    assert sc.parallelize([4], 3).reduce(operator.add) == 4  # empty partitions are skipped
    # fold applies the zero value once per partition and once more to combine (PySpark).
    assert sc.parallelize([1, 2, 3, 4], 2).fold(1, operator.add) == 13
    assert rdd.fold(0, operator.add) == 55
    assert sc.parallelize([], 2).fold(0, operator.add) == 0
    seq = lambda acc, x: (acc[0] + x, acc[1] + 1)  # noqa: E731
    comb = lambda a, b: (a[0] + b[0], a[1] + b[1])  # noqa: E731
    assert rdd.aggregate((0, 0), seq, comb) == (55, 10)
    assert sc.parallelize([], 4).aggregate((0, 0), seq, comb) == (0, 0)


def test_fold_and_aggregate_do_not_share_a_mutable_zero(sc):
    rdd = sc.parallelize(range(6), 3)
    out = rdd.aggregate([], lambda acc, x: [*acc, x], lambda a, b: a + b)
    assert out == list(range(6))
    out = rdd.map(lambda x: [x]).fold([], lambda a, b: a + b)
    assert out == list(range(6))


def test_count_by_value_is_empty_and_numeric_actions(sc):
    data = ["a", "b", "a", None, "c", "a", None]
    assert sc.parallelize(data, 3).countByValue() == dict(Counter(data))
    assert not sc.parallelize(data, 3).isEmpty()
    assert sc.parallelize([], 1).isEmpty()
    nums = sc.parallelize([5, 3, 9, 1, 7], 2)
    assert nums.sum() == 25
    assert nums.max() == 9
    assert nums.min() == 1
    assert nums.mean() == 5.0
    assert nums.top(2) == [9, 7]
    assert nums.takeOrdered(3) == [1, 3, 5]
    assert nums.max(key=lambda x: -x) == 1


def test_foreach_and_foreach_partition_run_on_every_element(sc):
    seen = sc.accumulator(0)
    calls = sc.accumulator(0)
    rdd = sc.parallelize(range(1, 21), 4)

    def add(x: int) -> None:
        seen.add(x)

    rdd.foreach(add)
    assert seen.value == 210

    def per_partition(it) -> None:
        calls.add(1)
        for x in it:
            seen.add(x)

    rdd.foreachPartition(per_partition)
    assert calls.value == 4
    assert seen.value == 420


def test_run_job_on_some_partitions(sc):
    rdd = sc.parallelize(range(10), 5)
    assert sc.runJob(rdd, lambda it: [sum(it)], partitions=[1, 3]) == [5, 13]
    assert sc.runJob(rdd, lambda it: [max(it, default=None)]) == [1, 3, 5, 7, 9]


def test_an_rdd_can_be_reused_by_many_actions(sc):
    rdd = sc.parallelize(range(30), 3).map(lambda x: x % 7)
    expected = [x % 7 for x in range(30)]
    for _ in range(3):
        assert rdd.collect() == expected
    assert rdd.count() == 30
    assert rdd.reduce(operator.add) == functools.reduce(operator.add, expected)


def test_to_debug_string_and_names(sc):
    rdd = sc.parallelize(range(4), 2).map(lambda x: (x, x)).reduceByKey(operator.add)
    text = rdd.toDebugString()
    assert isinstance(text, bytes)
    lines = text.decode().splitlines()
    assert len(lines) == 3  # the pipelined map over the shuffle over the collection
    assert lines[0].startswith("(2)")
    named = sc.parallelize([1]).setName("numbers")
    assert named.name() == "numbers"
    assert "numbers" in named.toDebugString().decode()
    assert isinstance(named, RDD)
    assert named.context is sc


# --------------------------------------------------------------------------- bad use


def test_non_callables_are_refused_naming_the_value(sc):
    rdd = sc.parallelize([1, 2])
    for op in (rdd.map, rdd.flatMap, rdd.filter, rdd.mapPartitions, rdd.foreach, rdd.reduce):
        with pytest.raises(TypeError, match=r"expects a function, got 42 of type int"):
            op(42)
    with pytest.raises(TypeError, match="'oops'"):
        rdd.map("oops")
    with pytest.raises(TypeError, match="mapValues"):
        rdd.mapValues(None)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_num_slices_and_partitions_must_be_positive_integers(sc, bad):
    with pytest.raises(ValueError, match="numSlices must be an integer >= 1"):
        sc.parallelize([1, 2, 3], bad)
    with pytest.raises(ValueError, match="numPartitions must be an integer >= 1"):
        sc.parallelize([1, 2, 3]).repartition(bad)
    with pytest.raises(ValueError, match="numPartitions must be an integer >= 1"):
        sc.parallelize([(1, 2)]).reduceByKey(operator.add, bad)


def test_parallelize_refuses_strings_and_non_iterables(sc):
    with pytest.raises(TypeError, match="parallelize expects a collection"):
        sc.parallelize("abc")
    with pytest.raises(TypeError, match="parallelize expects a collection"):
        sc.parallelize(5)
