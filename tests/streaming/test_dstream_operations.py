"""Every DStream transformation against a plain-Python expectation, on both executors.

Single-stream operations go through ``ember.testing.run_batches``; operations on two streams,
on partitions, on time ranges and on persistence use a small ManualClock harness
(:func:`run_streams`) with the same shape: one list of records per batch.
"""

from __future__ import annotations

import datetime
import operator
from collections import Counter, defaultdict
from collections.abc import Callable

import pytest
from ember import Context, StorageLevel
from ember.streaming import DStream, StreamingContext
from ember.testing import ManualClock, advance_batches, assert_batches_equal, run_batches

WORDS = [["a b", "c a"], [], ["b b b"], ["a"]]
NUMBERS = [[1, 2, 3, 4], [5], [], [6, 7, 8, 9, 10, 11]]
PAIRS = [[("a", 1), ("b", 2), ("a", 3)], [], [("c", 4)], [("b", 5), ("b", 6), ("d", 7)]]
OTHER = [[("a", "x"), ("c", "y")], [("a", "z")], [("c", "w"), ("c", "v")], [("e", "u")]]


def batch_ms(t: datetime.datetime) -> int:
    return round(t.timestamp() * 1000)


def at(ms: int) -> datetime.datetime:
    """The datetime PySpark gives for batch ``ms``."""
    return datetime.datetime.fromtimestamp(ms / 1000)


def group(pairs) -> dict:
    out: dict = defaultdict(list)
    for k, v in pairs:
        out[k].append(v)
    return dict(out)


def run_streams(master: str, inputs: list[list[list]], build: Callable[..., DStream], *,
                num_batches: int | None = None) -> list[list]:
    """Run ``build(ssc, *queue_streams)`` over ``inputs`` (the batches of each stream)."""
    n = max(len(b) for b in inputs) if num_batches is None else num_batches
    out: dict[int, list] = {}
    with Context(master, "dstream-ops") as sc:
        ssc = StreamingContext(sc, 1, clock=ManualClock())
        try:
            streams = [ssc.queueStream([_batch(sc, b) for b in batches]) for batches in inputs]
            build(ssc, *streams).foreachRDD(
                lambda t, rdd: out.__setitem__(batch_ms(t), rdd.collect()))
            ssc.start()
            advance_batches(ssc, n)
            ssc.awaitTerminationOrTimeout(0)  # raises a batch's error, if any
        finally:
            ssc.stop(stopSparkContext=False)
    return [out[t] for t in sorted(out)]


def _batch(sc: Context, batch):
    """A batch is a list of records, or ``(records, n)``: an RDD of ``n`` partitions."""
    if isinstance(batch, tuple):
        records, num_slices = batch
        return sc.parallelize(records, num_slices)
    return batch


# --------------------------------------------------------------------------- element-wise


def test_map(ember_master):
    out = run_batches(lambda s: s.map(lambda x: x * 10), NUMBERS, master=ember_master)
    assert_batches_equal(out, [[x * 10 for x in b] for b in NUMBERS])


def test_flat_map(ember_master):
    out = run_batches(lambda s: s.flatMap(str.split), WORDS, master=ember_master)
    assert_batches_equal(out, [[w for line in b for w in line.split()] for b in WORDS])


def test_filter(ember_master):
    out = run_batches(lambda s: s.filter(lambda x: x % 2 == 0), NUMBERS, master=ember_master)
    assert_batches_equal(out, [[x for x in b if x % 2 == 0] for b in NUMBERS])


def test_map_partitions_sees_whole_partitions(ember_master):
    batches = [([1, 2, 3, 4, 5, 6], 3), ([7, 8], 1), ([], 2)]
    out = run_streams(ember_master, [batches],
                      lambda ssc, s: s.mapPartitions(lambda it: [sum(it)]))
    assert out == [[3, 7, 11], [15], [0, 0]]


def test_map_partitions_with_index(ember_master):
    batches = [([1, 2, 3, 4], 2), (["x"], 1)]
    out = run_streams(ember_master, [batches], lambda ssc, s: s.mapPartitionsWithIndex(
        lambda i, it: [(i, x) for x in it]))
    assert out == [[(0, 1), (0, 2), (1, 3), (1, 4)], [(0, "x")]]


def test_glom(ember_master):
    batches = [([1, 2, 3, 4, 5, 6], 3), ([], 1)]
    out = run_streams(ember_master, [batches], lambda ssc, s: s.glom())
    assert out == [[[1, 2], [3, 4], [5, 6]], [[]]]


@pytest.mark.parametrize("n", [1, 3])
def test_repartition(ember_master, n):
    batches = [(list(range(12)), 2), ([5], 1)]
    out = run_streams(ember_master, [batches], lambda ssc, s: s.repartition(n).glom())
    assert [len(parts) for parts in out] == [n, n]
    assert [sorted(x for p in parts for x in p) for parts in out] == [list(range(12)), [5]]


def test_partition_by(ember_master):
    batches = [([(k, str(k)) for k in range(8)], 3)]
    out = run_streams(ember_master, [batches],
                      lambda ssc, s: s.partitionBy(2, lambda k: k % 2).glom())
    evens, odds = out[0]
    assert sorted(evens) == [(k, str(k)) for k in range(0, 8, 2)]
    assert sorted(odds) == [(k, str(k)) for k in range(1, 8, 2)]


def test_union(ember_master):
    out = run_streams(ember_master, [NUMBERS, [[100], [200, 300], [], []]],
                      lambda ssc, a, b: a.union(b))
    expected = [a + b for a, b in zip(NUMBERS, [[100], [200, 300], [], []], strict=True)]
    assert_batches_equal(out, expected, ordered=False)


def test_union_needs_the_same_slide_and_a_dstream(ember_context):
    ssc = StreamingContext(ember_context, 1, clock=ManualClock())
    other = StreamingContext(ember_context, 2, clock=ManualClock())
    a = ssc.queueStream([[1]])
    with pytest.raises(ValueError, match=r"same slide duration, got 1\.0 s and 2\.0 s"):
        a.union(other.queueStream([[1]]))
    with pytest.raises(TypeError, match="union expects a DStream, got list"):
        a.union([1])


# --------------------------------------------------------------------------- aggregates


def test_count(ember_master):
    out = run_batches(lambda s: s.count(), NUMBERS, master=ember_master)
    assert out == [[len(b)] for b in NUMBERS]


def test_reduce(ember_master):
    out = run_batches(lambda s: s.reduce(operator.add), NUMBERS, master=ember_master)
    assert out == [[sum(b)] if b else [] for b in NUMBERS]


def test_empty_batches_count_zero_and_reduce_to_nothing(ember_master):
    # the second batch is an empty list; the third comes from an exhausted queue (empty RDD)
    counts = run_batches(lambda s: s.count(), [[1, 2], []], num_batches=3, master=ember_master)
    assert counts == [[2], [0], [0]]
    sums = run_batches(lambda s: s.reduce(operator.add), [[1, 2], []], num_batches=3,
                       master=ember_master)
    assert sums == [[3], [], []]


def test_count_by_value(ember_master):
    batches = [["a", "b", "a"], [], ["c", "c", "c", "a"]]
    out = run_batches(lambda s: s.countByValue(), batches, master=ember_master)
    assert_batches_equal(out, [list(Counter(b).items()) for b in batches], ordered=False)


# --------------------------------------------------------------------------- key-value


def test_reduce_by_key(ember_master):
    out = run_batches(lambda s: s.reduceByKey(operator.add), PAIRS, master=ember_master)
    expected = [[(k, sum(vs)) for k, vs in group(b).items()] for b in PAIRS]
    assert_batches_equal(out, expected, ordered=False)


def test_reduce_by_key_with_partitions(ember_master):
    out = run_streams(ember_master, [PAIRS],
                      lambda ssc, s: s.reduceByKey(operator.add, 3).glom())
    assert [len(parts) for parts in out] == [3] * len(PAIRS)


def test_group_by_key(ember_master):
    out = run_batches(lambda s: s.groupByKey(), PAIRS, master=ember_master)
    got = [[(k, list(vs)) for k, vs in b] for b in out]
    expected = [list(group(b).items()) for b in PAIRS]
    assert_batches_equal(got, expected, ordered=False)


def test_combine_by_key(ember_master):
    out = run_batches(
        lambda s: s.combineByKey(lambda v: [v], lambda c, v: [*c, v], operator.add),
        PAIRS, master=ember_master,
    )
    got = [[(k, sorted(c)) for k, c in b] for b in out]
    expected = [[(k, sorted(vs)) for k, vs in group(b).items()] for b in PAIRS]
    assert_batches_equal(got, expected, ordered=False)


def test_map_values(ember_master):
    out = run_batches(lambda s: s.mapValues(lambda v: v * v), PAIRS, master=ember_master)
    assert_batches_equal(out, [[(k, v * v) for k, v in b] for b in PAIRS])


def test_flat_map_values(ember_master):
    out = run_batches(lambda s: s.flatMapValues(range), PAIRS, master=ember_master)
    assert_batches_equal(out, [[(k, i) for k, v in b for i in range(v)] for b in PAIRS])


def _joined(left: list, right: list, how: str) -> list:
    lg, rg = group(left), group(right)
    keys = {"join": lg.keys() & rg.keys(), "leftOuterJoin": lg.keys(),
            "rightOuterJoin": rg.keys(), "fullOuterJoin": lg.keys() | rg.keys()}[how]
    return [(k, (v, w)) for k in keys for v in lg.get(k, [None]) for w in rg.get(k, [None])]


@pytest.mark.parametrize("how", ["join", "leftOuterJoin", "rightOuterJoin", "fullOuterJoin"])
def test_joins(ember_master, how):
    out = run_streams(ember_master, [PAIRS, OTHER],
                      lambda ssc, a, b: getattr(a, how)(b))
    expected = [_joined(a, b, how) for a, b in zip(PAIRS, OTHER, strict=True)]
    assert_batches_equal(out, expected, ordered=False)


def test_join_with_partitions(ember_master):
    out = run_streams(ember_master, [PAIRS, OTHER], lambda ssc, a, b: a.join(b, 4).glom())
    assert [len(parts) for parts in out] == [4] * len(PAIRS)


def test_cogroup(ember_master):
    out = run_streams(ember_master, [PAIRS, OTHER], lambda ssc, a, b: a.cogroup(b))
    got = [[(k, (list(vs), list(ws))) for k, (vs, ws) in b] for b in out]
    expected = []
    for left, right in zip(PAIRS, OTHER, strict=True):
        lg, rg = group(left), group(right)
        expected.append([(k, (lg.get(k, []), rg.get(k, []))) for k in lg.keys() | rg.keys()])
    assert_batches_equal(got, expected, ordered=False)


# --------------------------------------------------------------------------- transform


def test_transform_with_a_function_of_the_rdd(ember_master):
    out = run_batches(lambda s: s.transform(lambda rdd: rdd.map(lambda x: -x).sortBy(abs)),
                      [[3, 1, 2], [], [9]], master=ember_master)
    assert out == [[-1, -2, -3], [], [-9]]


def test_transform_with_a_function_of_time_and_rdd(ember_master):
    seen: list = []

    def stamp(t, rdd):
        seen.append(t)
        return rdd.map(lambda x: (t, x))

    out = run_batches(lambda s: s.transform(stamp), [[1, 2], [3]], master=ember_master)
    assert out == [[(at(1000), 1), (at(1000), 2)], [(at(2000), 3)]]
    assert seen == [at(1000), at(2000)]
    assert all(isinstance(t, datetime.datetime) for t in seen)


def test_transform_must_return_an_rdd(ember_master):
    with pytest.raises(TypeError, match="must return an RDD, got list"):
        run_batches(lambda s: s.transform(lambda rdd: [1]), [[1]], master=ember_master)


def test_transform_with_two_arguments(ember_master):
    out = run_streams(ember_master, [PAIRS, OTHER],
                      lambda ssc, a, b: a.transformWith(lambda x, y: x.keys().union(y.keys()), b))
    expected = [[k for k, _ in a] + [k for k, _ in b] for a, b in zip(PAIRS, OTHER, strict=True)]
    assert_batches_equal(out, expected, ordered=False)


def test_transform_with_three_arguments_gets_the_batch_time(ember_master):
    def tagged(t, x, y):
        ms = batch_ms(t)
        return x.union(y).map(lambda kv: (ms, kv[0]))

    out = run_streams(ember_master, [PAIRS, OTHER],
                      lambda ssc, a, b: a.transformWith(tagged, b))
    expected = [[(1000 * (i + 1), k) for k, _ in a + b]
                for i, (a, b) in enumerate(zip(PAIRS, OTHER, strict=True))]
    assert_batches_equal(out, expected, ordered=False)


def test_transform_with_checks_the_function(ember_context):
    ssc = StreamingContext(ember_context, 1, clock=ManualClock())
    a, b = ssc.queueStream([[1]]), ssc.queueStream([[2]])
    with pytest.raises(TypeError, match="takes 1 arguments"):
        a.transformWith(lambda x: x, b)
    with pytest.raises(TypeError, match="transformWith expects a function"):
        a.transformWith(None, b)


@pytest.mark.parametrize("op", ["map", "flatMap", "filter", "mapPartitions", "mapValues",
                                "flatMapValues", "reduce", "reduceByKey"])
def test_operations_reject_what_is_not_a_function(ember_context, op):
    ssc = StreamingContext(ember_context, 1, clock=ManualClock())
    with pytest.raises(TypeError, match=f"{op} expects a function, got 3"):
        getattr(ssc.queueStream([[1]]), op)(3)


# --------------------------------------------------------------------------- slice


def test_slice_returns_the_remembered_rdds_of_a_time_range(ember_context, ember_master):
    sc = ember_context
    ssc = StreamingContext(sc, 1, clock=ManualClock())
    try:
        ssc.remember(3)
        squares = ssc.queueStream([[i, i + 1] for i in range(6)]).map(lambda x: x * x)
        squares.foreachRDD(lambda rdd: rdd.count())
        with pytest.raises(RuntimeError, match="has not been started"):
            squares.slice(0, 10)
        ssc.start()
        advance_batches(ssc, 6)
        # with seconds, or with datetimes; times between batches round down to one
        got = [rdd.collect() for rdd in squares.slice(4, 6)]
        assert got == [[9, 16], [16, 25], [25, 36]]
        got = [rdd.collect() for rdd in squares.slice(at(4500), at(6000))]
        assert got == [[9, 16], [16, 25], [25, 36]]
        assert [r.collect() for r in squares.slice(6, 6)] == [[25, 36]]
        # the first batch is older than the remember duration: forgotten
        assert squares.slice(1, 1) == []
        assert len(squares.slice(1, 6)) < 6
    finally:
        ssc.stop(stopSparkContext=False)


# --------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("cached", [True, False])
def test_a_cached_dstream_is_computed_once_for_two_outputs(ember_context, ember_master, cached):
    sc = ember_context
    calls = sc.accumulator(0)
    ssc = StreamingContext(sc, 1, clock=ManualClock())
    seen: list = []

    def tracked(x):
        calls.add(1)
        return x + 1

    try:
        stream = ssc.queueStream([[1, 2, 3], [4, 5]]).map(tracked)
        if cached:
            assert stream.cache() is stream
        stream.foreachRDD(lambda rdd: seen.append(rdd.count()))
        stream.foreachRDD(lambda rdd: seen.append(rdd.collect()))
        ssc.start()
        advance_batches(ssc, 2)
    finally:
        ssc.stop(stopSparkContext=False)
    assert seen == [3, [2, 3, 4], 2, [5, 6]]
    assert calls.value == (5 if cached else 10)


def test_persist_takes_a_storage_level(ember_context):
    ssc = StreamingContext(ember_context, 1, clock=ManualClock())
    stream = ssc.queueStream([[1]])
    assert stream.persist(StorageLevel.DISK_ONLY) is stream
    with pytest.raises(TypeError, match="persist expects a StorageLevel"):
        stream.persist("MEMORY_ONLY")


def test_persisted_rdds_use_the_level_and_are_unpersisted_once_forgotten(ember_master):
    levels: list = []
    rdds: list = []

    def record(rdd):
        levels.append(rdd.getStorageLevel())
        rdds.append(rdd)

    out = run_streams(
        ember_master, [[[1], [2], [3], [4]]],
        lambda ssc, s: _tap(s.map(lambda x: x).persist(StorageLevel.MEMORY_AND_DISK), record),
    )
    assert out == [[1], [2], [3], [4]]
    assert levels == [StorageLevel.MEMORY_AND_DISK] * 4
    assert not rdds[0].is_cached  # forgotten once older than the remember duration


def _tap(stream: DStream, func) -> DStream:
    stream.foreachRDD(func)
    return stream


def test_checkpoint_interval_must_be_a_multiple_of_the_slide(ember_context):
    ssc = StreamingContext(ember_context, 1, clock=ManualClock())
    stream = ssc.queueStream([[1]])
    with pytest.raises(ValueError, match=r"checkpoint interval 1\.5 s must be a multiple of the "
                                         r"slide duration 1\.0 s"):
        stream.checkpoint(1.5)
    with pytest.raises(ValueError, match="checkpoint interval must be a positive number"):
        stream.checkpoint(0)


def test_checkpoint_without_a_checkpoint_directory_fails_at_start(ember_context):
    ssc = StreamingContext(ember_context, 1, clock=ManualClock())
    ssc.queueStream([[1]]).checkpoint(2).pprint()
    with pytest.raises(ValueError, match="no checkpoint directory is set; call "
                                         r"ssc.checkpoint\(directory\) before start"):
        ssc.start()
    assert StreamingContext.getActive() is None
    ssc.stop(stopSparkContext=False)


def test_checkpoint_saves_the_rdds_every_interval(ember_context, ember_master, tmp_path):
    sc = ember_context
    ssc = StreamingContext(sc, 1, clock=ManualClock())
    flags: list = []

    def check(t, rdd):
        flags.append((batch_ms(t), rdd.collect(), rdd.isCheckpointed()))

    try:
        ssc.checkpoint(str(tmp_path / "ckpt"))
        ssc.queueStream([[1], [2], [3], [4]]).map(lambda x: x * 2).checkpoint(2).foreachRDD(check)
        ssc.start()
        advance_batches(ssc, 4)
        ssc.awaitTerminationOrTimeout(0)
    finally:
        ssc.stop(stopSparkContext=False)
    assert flags == [(1000, [2], False), (2000, [4], True), (3000, [6], False),
                     (4000, [8], True)]
    assert any((tmp_path / "ckpt").rglob("*"))
