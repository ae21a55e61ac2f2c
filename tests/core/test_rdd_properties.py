"""Property tests of the shuffle operations against plain-Python reference implementations.

Random lists of ``(key, value)`` pairs — str, int, tuple and ``None`` keys, some skewed onto
one hot key — cut into a random number of partitions (often more than there are records, so
many are empty) and shuffled into a random number of partitions, on both executors. One
context serves all the examples of a test; example counts are modest because every example
runs real jobs.
"""

from __future__ import annotations

import operator
from collections import Counter, defaultdict

import pytest
from ember import Context
from ember._engine.partitioning import portable_hash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KEYS = st.one_of(
    st.text(max_size=3),
    st.integers(-20, 20),
    st.none(),
    st.tuples(st.integers(0, 3), st.one_of(st.none(), st.text(max_size=2))),
)
VALUES = st.integers(-1000, 1000)
SLICES = st.integers(1, 8)
PARTS = st.integers(1, 6)


@st.composite
def pair_lists(draw: st.DrawFn, keys: st.SearchStrategy = KEYS) -> list[tuple]:
    """Pairs over a small pool of keys (so keys repeat), plus a run of one hot key."""
    pool = draw(st.lists(keys, min_size=1, max_size=8))
    pairs = draw(st.lists(st.tuples(st.sampled_from(pool), VALUES), max_size=40))
    hot = draw(st.integers(0, 25))
    pairs += [(pool[0], v) for v in draw(st.lists(VALUES, min_size=hot, max_size=hot))]
    return draw(st.permutations(pairs))


@pytest.fixture
def sc(ember_context: Context, ember_master: str) -> Context:
    return ember_context


def _groups(pairs):
    out = defaultdict(list)
    for k, v in pairs:
        out[k].append(v)
    return dict(out)


def _canon(items):
    """A multiset of records whose keys may not be mutually comparable."""
    return Counter(repr(x) for x in items)


def _assert_hash_placed(parts, n):
    assert len(parts) == n
    for i, part in enumerate(parts):
        for k, _ in part:
            assert portable_hash(k) % n == i, (k, i)


def test_reduce_by_key_matches_a_dict_sum(sc):
    @SETTINGS
    @given(pairs=pair_lists(), slices=SLICES, n=PARTS)
    def check(pairs, slices, n):
        parts = sc.parallelize(pairs, slices).reduceByKey(operator.add, n).glom().collect()
        _assert_hash_placed(parts, n)
        out = [kv for p in parts for kv in p]
        assert len(out) == len({k for k, _ in out})  # each key once
        assert dict(out) == {k: sum(vs) for k, vs in _groups(pairs).items()}

    check()


def test_group_by_key_matches_grouping(sc):
    @SETTINGS
    @given(pairs=pair_lists(), slices=SLICES, n=PARTS)
    def check(pairs, slices, n):
        out = sc.parallelize(pairs, slices).groupByKey(n).collect()
        assert len(out) == len({k for k, _ in out})
        assert {k: sorted(vs) for k, vs in out} == {
            k: sorted(vs) for k, vs in _groups(pairs).items()
        }

    check()


def test_combine_aggregate_and_fold_by_key_match_the_reference(sc):
    def append(acc, v):
        acc.append(v)
        return acc

    def extend(a, b):
        a.extend(b)
        return a

    @SETTINGS
    @given(pairs=pair_lists(), slices=SLICES, n=PARTS)
    def check(pairs, slices, n):
        rdd = sc.parallelize(pairs, slices)
        groups = _groups(pairs)
        combined = rdd.combineByKey(lambda v: [v], append, extend, n).collect()
        assert {k: sorted(vs) for k, vs in combined} == {k: sorted(vs) for k, vs in groups.items()}
        aggregated = rdd.aggregateByKey([], append, extend, n).collect()
        assert {k: sorted(vs) for k, vs in aggregated} == {
            k: sorted(vs) for k, vs in groups.items()
        }
        stats = rdd.aggregateByKey(
            (0, 0), lambda a, v: (a[0] + v, a[1] + 1), lambda a, b: (a[0] + b[0], a[1] + b[1]), n
        ).collect()
        assert dict(stats) == {k: (sum(vs), len(vs)) for k, vs in groups.items()}
        folded = rdd.foldByKey(0, operator.add, n).collect()
        assert dict(folded) == {k: sum(vs) for k, vs in groups.items()}
        assert rdd.countByKey() == {k: len(vs) for k, vs in groups.items()}

    check()


def test_joins_and_cogroup_match_nested_loops(sc):
    @SETTINGS
    @given(
        left=pair_lists(), right=pair_lists(), left_slices=SLICES, right_slices=SLICES,
        n=st.one_of(st.none(), PARTS),
    )
    def check(left, right, left_slices, right_slices, n):
        a = sc.parallelize(left, left_slices)
        b = sc.parallelize(right, right_slices)
        lg, rg = _groups(left), _groups(right)
        keys = lg.keys() | rg.keys()
        inner = [(k, (v, w)) for k in keys for v in lg.get(k, []) for w in rg.get(k, [])]
        left_outer = [
            (k, (v, w)) for k in lg for v in lg[k] for w in (rg.get(k) or [None])
        ]
        right_outer = [
            (k, (v, w)) for k in rg for v in (lg.get(k) or [None]) for w in rg[k]
        ]
        full = [
            (k, (v, w))
            for k in keys
            for v in (lg.get(k) or [None])
            for w in (rg.get(k) or [None])
        ]
        assert _canon(a.join(b, n).collect()) == _canon(inner)
        assert _canon(a.leftOuterJoin(b, n).collect()) == _canon(left_outer)
        assert _canon(a.rightOuterJoin(b, n).collect()) == _canon(right_outer)
        assert _canon(a.fullOuterJoin(b, n).collect()) == _canon(full)
        cg = a.cogroup(b, n).collect()
        assert len(cg) == len(keys)
        assert {k: (sorted(vs), sorted(ws)) for k, (vs, ws) in cg} == {
            k: (sorted(lg.get(k, [])), sorted(rg.get(k, []))) for k in keys
        }
        subtracted = a.subtractByKey(b, n).collect()
        assert _canon(subtracted) == _canon(kv for kv in left if kv[0] not in rg)

    check()


def test_partition_by_and_repartition_keep_every_record(sc):
    @SETTINGS
    @given(pairs=pair_lists(), slices=SLICES, n=PARTS)
    def check(pairs, slices, n):
        rdd = sc.parallelize(pairs, slices)
        parts = rdd.partitionBy(n).glom().collect()
        _assert_hash_placed(parts, n)
        assert _canon(kv for p in parts for kv in p) == _canon(pairs)
        parts = rdd.repartition(n).glom().collect()
        assert len(parts) == n
        assert _canon(kv for p in parts for kv in p) == _canon(pairs)

    check()


def test_distinct_matches_a_set(sc):
    @SETTINGS
    @given(
        items=st.lists(st.one_of(KEYS, st.tuples(KEYS, st.integers(0, 2))), max_size=50),
        slices=SLICES,
        n=st.one_of(st.none(), PARTS),
    )
    def check(items, slices, n):
        out = sc.parallelize(items, slices).distinct(n).collect()
        assert len(out) == len(set(items))
        assert set(out) == set(items)

    check()


def test_sort_by_key_matches_sorted(sc):
    @SETTINGS
    @given(
        pairs=pair_lists(keys=st.integers(-50, 50)),
        slices=SLICES,
        n=st.one_of(st.none(), PARTS),
        ascending=st.booleans(),
    )
    def check(pairs, slices, n, ascending):
        rdd = sc.parallelize(pairs, slices).sortByKey(ascending, n)
        out = rdd.collect()
        assert [k for k, _ in out] == sorted((k for k, _ in pairs), reverse=not ascending)
        assert Counter(out) == Counter(pairs)
        values = sc.parallelize(pairs, slices).sortBy(lambda kv: kv[1], ascending, n).collect()
        assert [v for _, v in values] == sorted((v for _, v in pairs), reverse=not ascending)

    check()


def test_chained_shuffles_match_the_reference(sc):
    @SETTINGS
    @given(pairs=pair_lists(), slices=SLICES, n1=PARTS, n2=PARTS)
    def check(pairs, slices, n1, n2):
        # per key: the sum, then the number of keys per sum (a second shuffle on new keys)
        out = (
            sc.parallelize(pairs, slices)
            .reduceByKey(operator.add, n1)
            .map(lambda kv: (kv[1] % 7, 1))
            .reduceByKey(operator.add, n2)
            .collect()
        )
        sums = Counter(sum(vs) % 7 for vs in _groups(pairs).values())
        assert dict(out) == dict(sums)

    check()
