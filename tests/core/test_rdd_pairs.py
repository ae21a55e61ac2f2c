"""Key-value operations against plain-Python expectations, on ``inline`` and ``local[2]``.

Where PySpark leaves an order unspecified (the values of a group, the order of keys after a
hash shuffle), results are compared after sorting.
"""

from __future__ import annotations

import operator
from collections import defaultdict

import pytest
from ember import Context
from ember._engine.partitioning import portable_hash

PAIRS = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5), ("a", 6), (None, 7), ((1, "x"), 8)]
OTHER = [("a", "x"), ("c", "y"), ("c", "z"), ("d", "w"), (None, "n")]


@pytest.fixture
def sc(ember_context: Context, ember_master: str) -> Context:
    return ember_context


def _sorted(items):
    return sorted(items, key=repr)


def _groups(pairs):
    out = defaultdict(list)
    for k, v in pairs:
        out[k].append(v)
    return out


def _cogroup(left, right):
    lg, rg = _groups(left), _groups(right)
    return {k: (sorted(lg.get(k, [])), sorted(rg.get(k, []), key=repr)) for k in {*lg, *rg}}


def _joins(left, right):
    cg = _cogroup(left, right)
    inner, lo, ro, full = [], [], [], []
    for k, (vs, ws) in cg.items():
        inner += [(k, (v, w)) for v in vs for w in ws]
        lo += [(k, (v, w)) for v in vs for w in (ws or [None])]
        ro += [(k, (v, w)) for v in (vs or [None]) for w in ws]
        full += [(k, (v, w)) for v in (vs or [None]) for w in (ws or [None])]
    return inner, lo, ro, full


# --------------------------------------------------------------------------- narrow


def test_keys_values_map_values_flat_map_values(sc):
    rdd = sc.parallelize(PAIRS, 3)
    assert rdd.keys().collect() == [k for k, _ in PAIRS]
    assert rdd.values().collect() == [v for _, v in PAIRS]
    assert rdd.mapValues(lambda v: v * 10).collect() == [(k, v * 10) for k, v in PAIRS]
    assert rdd.flatMapValues(lambda v: range(v % 3)).collect() == [
        (k, x) for k, v in PAIRS for x in range(v % 3)
    ]


# --------------------------------------------------------------------------- aggregations


@pytest.mark.parametrize("num_partitions", [None, 1, 2, 5])
def test_reduce_by_key(sc, num_partitions):
    rdd = sc.parallelize(PAIRS, 3).reduceByKey(operator.add, num_partitions)
    expected = {k: sum(vs) for k, vs in _groups(PAIRS).items()}
    out = rdd.collect()
    assert len(out) == len(expected)
    assert dict(out) == expected
    assert rdd.getNumPartitions() == (num_partitions or 3)


def test_reduce_by_key_puts_each_key_in_its_hash_partition(sc):
    rdd = sc.parallelize(PAIRS, 2).reduceByKey(operator.add, 4)
    for i, part in enumerate(rdd.glom().collect()):
        for k, _ in part:
            assert portable_hash(k) % 4 == i


def test_group_by_key(sc):
    out = sc.parallelize(PAIRS, 4).groupByKey(3).mapValues(sorted).collect()
    assert _sorted(out) == _sorted(
        (k, sorted(vs)) for k, vs in _groups(PAIRS).items()
    )


def test_combine_by_key(sc):
    rdd = sc.parallelize(PAIRS, 3).combineByKey(
        lambda v: (v, 1),
        lambda acc, v: (acc[0] + v, acc[1] + 1),
        lambda a, b: (a[0] + b[0], a[1] + b[1]),
        2,
    )
    expected = {k: (sum(vs), len(vs)) for k, vs in _groups(PAIRS).items()}
    assert dict(rdd.collect()) == expected


def test_combine_by_key_may_mutate_its_combiners(sc):
    def append(acc, v):
        acc.append(v)
        return acc

    def extend(a, b):
        a.extend(b)
        return a

    rdd = sc.parallelize(PAIRS, 4).combineByKey(lambda v: [v], append, extend, 3)
    first = {k: sorted(vs) for k, vs in rdd.collect()}
    second = {k: sorted(vs) for k, vs in rdd.collect()}  # map outputs read again
    assert first == second == {k: sorted(vs) for k, vs in _groups(PAIRS).items()}


def test_aggregate_by_key_copies_the_zero_value_for_each_key(sc):
    def seq(acc, v):
        acc.append(v)
        return acc

    def comb(a, b):
        a.extend(b)
        return a

    out = sc.parallelize(PAIRS, 3).aggregateByKey([], seq, comb).mapValues(sorted).collect()
    assert dict(out) == {k: sorted(vs) for k, vs in _groups(PAIRS).items()}
    out = sc.parallelize(PAIRS, 3).aggregateByKey(0, lambda a, v: a + v, operator.add, 2)
    assert dict(out.collect()) == {k: sum(vs) for k, vs in _groups(PAIRS).items()}


def test_fold_by_key_applies_the_zero_once_per_partition_holding_the_key(sc):
    rdd = sc.parallelize([("a", 1), ("a", 2), ("a", 3), ("b", 4)], 2)
    # partitions: [a1, a2] and [a3, b4]; as PySpark: a = (10+1+2) + (10+3), b = 10+4
    assert dict(rdd.foldByKey(10, operator.add).collect()) == {"a": 26, "b": 14}
    assert dict(rdd.foldByKey(0, operator.add, 3).collect()) == {"a": 6, "b": 4}


def test_count_by_key_collect_as_map_lookup(sc):
    rdd = sc.parallelize(PAIRS, 3)
    assert rdd.countByKey() == {k: len(vs) for k, vs in _groups(PAIRS).items()}
    assert rdd.collectAsMap() == dict(PAIRS)  # the later pair of a key wins
    assert sorted(rdd.lookup("a")) == [1, 3, 6]
    assert rdd.lookup("zzz") == []


def test_distinct_pairs_and_subtract_by_key(sc):
    rdd = sc.parallelize([*PAIRS, *PAIRS[:3]], 3)
    assert _sorted(rdd.distinct().collect()) == _sorted(set(PAIRS))
    out = sc.parallelize(PAIRS, 2).subtractByKey(sc.parallelize(OTHER, 3)).collect()
    other_keys = {k for k, _ in OTHER}
    assert _sorted(out) == _sorted(kv for kv in PAIRS if kv[0] not in other_keys)


# --------------------------------------------------------------------------- joins


@pytest.mark.parametrize(("left_parts", "right_parts", "num"), [(1, 1, None), (3, 2, None), (2, 4, 3)])
def test_joins_and_cogroup(sc, left_parts, right_parts, num):
    left = sc.parallelize(PAIRS, left_parts)
    right = sc.parallelize(OTHER, right_parts)
    inner, lo, ro, full = _joins(PAIRS, OTHER)
    assert _sorted(left.join(right, num).collect()) == _sorted(inner)
    assert _sorted(left.leftOuterJoin(right, num).collect()) == _sorted(lo)
    assert _sorted(left.rightOuterJoin(right, num).collect()) == _sorted(ro)
    assert _sorted(left.fullOuterJoin(right, num).collect()) == _sorted(full)
    cg = left.cogroup(right, num).mapValues(lambda vw: (sorted(vw[0]), sorted(vw[1], key=repr)))
    assert dict(cg.collect()) == _cogroup(PAIRS, OTHER)
    expected_parts = num or max(left_parts, right_parts)
    assert left.join(right, num).getNumPartitions() == expected_parts


def test_join_with_itself_and_with_empty(sc):
    rdd = sc.parallelize([(1, "a"), (2, "b"), (1, "c")], 2)
    assert _sorted(rdd.join(rdd).collect()) == _sorted(
        [(1, (x, y)) for x in "ac" for y in "ac"] + [(2, ("b", "b"))]
    )
    empty = sc.parallelize([], 2)
    assert rdd.join(empty).collect() == []
    assert _sorted(rdd.leftOuterJoin(empty).collect()) == _sorted(
        [(1, ("a", None)), (2, ("b", None)), (1, ("c", None))]
    )


def test_group_with_three_rdds(sc):
    a = sc.parallelize([(1, "a")], 1)
    b = sc.parallelize([(1, "b"), (2, "b")], 2)
    c = sc.parallelize([(2, "c"), (3, "c")], 3)
    out = dict(a.groupWith(b, c).collect())
    assert out == {1: (["a"], ["b"], []), 2: ([], ["b"], ["c"]), 3: ([], [], ["c"])}


# --------------------------------------------------------------------------- partitioning


@pytest.mark.parametrize("n", [1, 3, 4])
def test_partition_by_places_every_key_by_its_hash(sc, n):
    parts = sc.parallelize(PAIRS, 2).partitionBy(n).glom().collect()
    assert len(parts) == n
    for i, part in enumerate(parts):
        assert all(portable_hash(k) % n == i for k, _ in part)
    assert _sorted(kv for p in parts for kv in p) == _sorted(PAIRS)


def test_partition_by_with_a_custom_function(sc):
    data = [(i, str(i)) for i in range(10)]
    parts = sc.parallelize(data, 3).partitionBy(2, lambda k: 0 if k < 7 else 1).glom().collect()
    assert parts[0] and sorted(parts[0]) == data[:7]
    assert sorted(parts[1]) == data[7:]


def test_operations_on_data_partitioned_alike_skip_the_shuffle(sc):
    parted = sc.parallelize(PAIRS, 3).partitionBy(2)
    assert parted.partitioner is not None
    reduced = parted.reduceByKey(operator.add, 2)
    # No new shuffle: the lineage is the pipelined combine over the existing partitionBy.
    assert len(reduced.toDebugString().splitlines()) == len(parted.toDebugString().splitlines()) + 1
    assert dict(reduced.collect()) == {k: sum(vs) for k, vs in _groups(PAIRS).items()}
    assert parted.mapValues(str).partitioner == parted.partitioner
    assert parted.map(lambda kv: kv).partitioner is None
    assert parted.partitionBy(2) is parted


# --------------------------------------------------------------------------- sorting


@pytest.mark.parametrize("num_partitions", [None, 1, 2, 4])
@pytest.mark.parametrize("ascending", [True, False])
def test_sort_by_key(sc, ascending, num_partitions):
    data = [(k, i) for i, k in enumerate([5, 3, 9, 1, 1, 8, -2, 7, 3, 0, 11, 4])]
    out = sc.parallelize(data, 3).sortByKey(ascending, num_partitions).collect()
    assert [k for k, _ in out] == sorted((k for k, _ in data), reverse=not ascending)
    assert sorted(out) == sorted(data)


def test_sort_by_key_with_key_function_and_partition_ranges(sc):
    words = ["b", "A", "c", "D", "e", "F", "g", "H"]
    rdd = sc.parallelize([(w, 1) for w in words], 3).sortByKey(True, 3, keyfunc=str.lower)
    assert [k for k, _ in rdd.collect()] == sorted(words, key=str.lower)
    parts = rdd.glom().collect()
    assert len(parts) == 3
    flat_keys = [k.lower() for p in parts for k, _ in p]
    assert flat_keys == sorted(flat_keys)  # partition i holds smaller keys than i + 1


def test_sort_by(sc):
    data = [("x", 3), ("y", 1), ("z", 2), ("w", 1)]
    rdd = sc.parallelize(data, 2)
    assert rdd.sortBy(lambda kv: kv[1]).map(lambda kv: kv[1]).collect() == [1, 1, 2, 3]
    assert rdd.sortBy(lambda kv: kv[0], ascending=False).keys().collect() == ["z", "y", "x", "w"]
    assert sc.parallelize([], 2).sortBy(lambda x: x).collect() == []


def test_narrow_operations_over_a_shuffle(sc):
    reduced = sc.parallelize(PAIRS, 3).reduceByKey(operator.add, 4)
    expected = {k: sum(vs) for k, vs in _groups(PAIRS).items()}
    merged = reduced.coalesce(2)
    assert merged.getNumPartitions() == 2
    assert dict(merged.collect()) == expected
    both = reduced.union(sc.parallelize([("z", 0)], 1))
    assert dict(both.collect()) == {**expected, "z": 0}
    assert reduced.keys().count() == len(expected)
