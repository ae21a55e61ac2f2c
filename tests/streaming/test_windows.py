"""Window operations against exact expectations, on both executors, under the manual clock.

A window at time ``t`` covers the parent's batches in ``(t - window, t]`` and is produced at
the times ``zero + k * slide`` (PySpark's semantics; several expectations are PySpark's own
``test_dstream.py`` cases). The expectations are hand-computed or come from
:func:`window_reference`, a plain-Python model of that rule.
"""

from __future__ import annotations

import operator
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable

import pytest
from ember import Context
from ember.streaming import DStream, StreamingContext
from ember.testing import ManualClock, advance_batches, run_batches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def run_windowed(sc: Context, batches: list[list], builds: dict[str, Callable[[DStream], DStream]],
                 *, interval: float, num_batches: int, checkpoint_dir: str | None) -> dict:
    """Run every ``build(input_stream)`` of ``builds`` over one queue stream of ``batches``.

    Returns ``{name: [(batch time in ms, collected records), ...]}`` for the times each built
    stream produced an RDD. The input stream has an output of its own, so each input batch is
    taken from the queue at its own batch time even when no window needs it (a queue stream
    is only read when one of its batches is computed, in Spark as here).
    """
    out: dict[str, list] = {name: [] for name in builds}
    ssc = StreamingContext(sc, interval, clock=ManualClock())
    try:
        if checkpoint_dir is not None:
            ssc.checkpoint(checkpoint_dir)
        stream = ssc.queueStream(batches)
        stream.foreachRDD(lambda rdd: None)
        for name, build in builds.items():
            build(stream).foreachRDD(
                lambda t, rdd, name=name: out[name].append(
                    (round(t.timestamp() * 1000), rdd.collect())))
        ssc.start()
        advance_batches(ssc, num_batches)
        ssc.awaitTerminationOrTimeout(0)  # raises a batch's error, if any
    finally:
        ssc.stop(stopSparkContext=False)
    return out


def window_reference(batches: list[list], window: int, slide: int,
                     num_batches: int) -> list[tuple[int, list]]:
    """``[(t, records)]``: for every ``t`` in ``slide, 2 * slide, ... <= num_batches`` (in batch
    units; batch ``i`` is at time ``i``), the records of batches ``t - window < i <= t``, in
    batch order."""
    return [
        (t, [r for i in range(max(1, t - window + 1), t + 1) if i <= len(batches)
             for r in batches[i - 1]])
        for t in range(slide, num_batches + 1, slide)
    ]


def sums(records: list[tuple]) -> dict:
    out: dict = defaultdict(int)
    for k, v in records:
        out[k] += v
    return dict(out)


def ranges(n: int) -> list[list[int]]:
    """PySpark's test input: ``range(1)``, ``range(2)``, ... ``range(n)``."""
    return [list(range(i)) for i in range(1, n + 1)]


# --------------------------------------------------------------------------- window


def test_window_count_matches_pyspark(ember_master):
    out = run_batches(lambda s: s.window(1.5, 0.5).count(), ranges(5), interval=0.5,
                      master=ember_master, num_batches=7)
    assert out == [[1], [3], [6], [9], [12], [9], [5]]


def test_window_holds_the_parent_batches_in_the_half_open_interval(ember_master):
    batches = [[f"b{i}-{j}" for j in range(i % 3 + 1)] for i in range(1, 7)]
    with Context(ember_master, "windows") as sc:
        out = run_windowed(sc, batches, {"w": lambda s: s.window(1.5, 0.5)},
                           interval=0.5, num_batches=9, checkpoint_dir=None)["w"]
    expected = [(t * 500, recs) for t, recs in window_reference(batches, 3, 1, 9)]
    assert out == expected  # times, contents and their order (the batches in time order)
    assert out[-1] == (4500, [])  # a window past the end of the data is empty, not missing


def test_window_with_a_slide_of_two_batches_emits_every_second_batch_time(ember_master):
    with Context(ember_master, "windows") as sc:
        out = run_windowed(sc, ranges(5), {"w": lambda s: s.window(2, 1)}, interval=0.5,
                           num_batches=8, checkpoint_dir=None)["w"]
    assert [t for t, _ in out] == [1000, 2000, 3000, 4000]
    assert out == [
        (1000, [0, 0, 1]),                                 # batches at 0.5 and 1.0
        (2000, [0, 0, 1, 0, 1, 2, 0, 1, 2, 3]),            # 0.5 .. 2.0
        (3000, [0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4]),      # 1.5 .. 3.0 (range(5) at 2.5)
        (4000, [0, 1, 2, 3, 4]),                           # 2.5 .. 4.0
    ]


def test_window_slide_defaults_to_the_parent_slide():
    with Context("inline", "windows") as sc:
        ssc = StreamingContext(sc, 0.5, clock=ManualClock())
        s = ssc.queueStream([[1]])
        assert s.window(2).slideDuration() == 0.5
        assert s.window(2, 1).slideDuration() == 1.0
        assert s.window(2, 1).window(4).slideDuration() == 1.0


@pytest.mark.parametrize(
    ("define", "message"),
    [
        (lambda s: s.window(1.2, 0.5),
         r"windowDuration 1\.2 s must be a multiple of the parent stream's slide duration 0\.5 s"),
        (lambda s: s.window(1.5, 0.7),
         r"slideDuration 0\.7 s must be a multiple of the parent stream's slide duration 0\.5 s"),
        (lambda s: s.window(2, 1).window(3, 1.5),
         r"slideDuration 1\.5 s must be a multiple of the parent stream's slide duration 1\.0 s"),
        (lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 1.2, 0.5),
         r"windowDuration 1\.2 s must be a multiple"),
        (lambda s: s.reduceByKeyAndWindow(operator.add, None, 1.5, 0.75),
         r"slideDuration 0\.75 s must be a multiple"),
        (lambda s: s.countByWindow(1.25, 0.5), r"windowDuration 1\.25 s must be a multiple"),
        (lambda s: s.reduceByWindow(operator.add, None, 1, 0.3),
         r"slideDuration 0\.3 s must be a multiple"),
        (lambda s: s.countByValueAndWindow(0.7, 0.5), r"windowDuration 0\.7 s must be a multiple"),
        (lambda s: s.groupByKeyAndWindow(1, 0.25), r"slideDuration 0\.25 s must be a multiple"),
        (lambda s: s.window(0), r"windowDuration must be a positive number of seconds, got 0"),
        (lambda s: s.window(1, -0.5), r"slideDuration must be a positive number of seconds"),
    ],
)
def test_durations_that_are_not_multiples_of_the_parent_slide_fail_at_definition(define, message):
    with Context("inline", "windows") as sc:
        ssc = StreamingContext(sc, 0.5, clock=ManualClock())
        with pytest.raises(ValueError, match=message):
            define(ssc.queueStream([[("a", 1)]]))


# --------------------------------------------------------------------------- reduceByKeyAndWindow

PAIRS = [[("a", 1), ("b", 2), ("a", 3)], [], [("c", 4)], [("b", 5), ("b", 6), ("d", 7)],
         [("a", 8)], [], [("c", 9), ("a", 10)]]


def test_reduce_by_key_and_window_with_and_without_inverse_match_the_reference(ember_master):
    n = len(PAIRS) + 3
    builds = {
        "plain": lambda s: s.reduceByKeyAndWindow(operator.add, None, 3, 1),
        "inverse": lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 3, 1),
        "slide2": lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 3, 2),
    }
    with Context(ember_master, "windows") as sc, tempfile.TemporaryDirectory() as d:
        out = run_windowed(sc, PAIRS, builds, interval=1, num_batches=n, checkpoint_dir=d)
    expected = [(t * 1000, sums(r)) for t, r in window_reference(PAIRS, 3, 1, n)]
    assert [(t, dict(r)) for t, r in out["plain"]] == expected
    # with an inverse function, keys stay in the window's state with the "zero" value
    assert [(t, {k: v for k, v in r if v != 0}) for t, r in out["inverse"]] == expected
    assert dict(out["inverse"][-1][1]) == {"a": 0, "b": 0, "c": 0, "d": 0}
    slide2 = [(t * 1000, sums(r)) for t, r in window_reference(PAIRS, 3, 2, n)]
    assert [(t, {k: v for k, v in r if v != 0}) for t, r in out["slide2"]] == slide2


def test_reduce_by_key_and_window_filter_func_drops_keys(ember_master):
    n = len(PAIRS) + 3
    builds = {
        "inverse": lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 2, 1,
                                                    filterFunc=lambda kv: kv[1] > 0),
        "plain": lambda s: s.reduceByKeyAndWindow(operator.add, None, 2, 1,
                                                  filterFunc=lambda kv: kv[1] >= 5),
    }
    with Context(ember_master, "windows") as sc, tempfile.TemporaryDirectory() as d:
        out = run_windowed(sc, PAIRS, builds, interval=1, num_batches=n, checkpoint_dir=d)
    ref = [(t * 1000, sums(r)) for t, r in window_reference(PAIRS, 2, 1, n)]
    assert [(t, dict(r)) for t, r in out["inverse"]] == ref  # no zero-valued keys left
    assert out["inverse"][-1] == (n * 1000, [])
    assert [(t, dict(r)) for t, r in out["plain"]] == [
        (t, {k: v for k, v in s.items() if v >= 5}) for t, s in ref]


def test_reduce_by_key_and_window_num_partitions(ember_master):
    builds = {
        "inverse": lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 2, 1, 3)
        .glom().map(len),
        "plain": lambda s: s.reduceByKeyAndWindow(operator.add, None, 2, 1, 3).glom().map(len),
    }
    with Context(ember_master, "windows") as sc, tempfile.TemporaryDirectory() as d:
        out = run_windowed(sc, PAIRS[:3], builds, interval=1, num_batches=3, checkpoint_dir=d)
    for name in builds:
        assert [len(parts) for _, parts in out[name]] == [3, 3, 3], name


def test_incremental_window_with_a_slide_longer_than_the_window_is_exact(ember_master):
    """Non-overlapping windows: nothing of the batches between two windows may leak in."""
    batches = [[(c, 1)] for c in "abcdefgh"]
    builds = {
        "w1s2": lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 1, 2),
        "w2s3": lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 2, 3),
        "w2s2": lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 2, 2),
    }
    with Context(ember_master, "windows") as sc, tempfile.TemporaryDirectory() as d:
        out = run_windowed(sc, batches, builds, interval=1, num_batches=9, checkpoint_dir=d)
    assert [(t, dict(r)) for t, r in out["w1s2"]] == [
        (2000, {"b": 1}), (4000, {"d": 1}), (6000, {"f": 1}), (8000, {"h": 1})]
    assert [(t, dict(r)) for t, r in out["w2s3"]] == [
        (3000, {"b": 1, "c": 1}), (6000, {"e": 1, "f": 1}), (9000, {"h": 1})]
    assert [(t, dict(r)) for t, r in out["w2s2"]] == [
        (2000, {"a": 1, "b": 1}), (4000, {"c": 1, "d": 1}), (6000, {"e": 1, "f": 1}),
        (8000, {"g": 1, "h": 1})]


_BATCHES = st.lists(
    st.lists(st.tuples(st.sampled_from("abcde"), st.integers(1, 9)), max_size=6),
    min_size=1, max_size=7,
)


def test_reduce_by_key_and_window_inverse_equals_recomputation_property(ember_master,
                                                                        ember_no_leaks):
    """Random batches, windows and slides: the incremental (inverse function) window, the
    recomputed one and the plain-Python reference agree — one Context for all examples."""
    with Context(ember_master, "windows-property") as sc, \
            tempfile.TemporaryDirectory() as root:

        @settings(max_examples=15 if ember_master == "inline" else 10, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(batches=_BATCHES, window=st.integers(1, 5), slide=st.integers(1, 3))
        def check(batches: list[list], window: int, slide: int) -> None:
            n = len(batches) + window + slide  # run until the windows are empty again
            builds = {
                "plain": lambda s: s.reduceByKeyAndWindow(operator.add, None, window, slide),
                "inverse": lambda s: s.reduceByKeyAndWindow(
                    operator.add, operator.sub, window, slide, filterFunc=lambda kv: kv[1] != 0),
            }
            out = run_windowed(sc, batches, builds, interval=1, num_batches=n,
                               checkpoint_dir=f"{root}/{uuid.uuid4().hex}")
            expected = [(t * 1000, sums(r)) for t, r in window_reference(batches, window,
                                                                         slide, n)]
            assert [(t, dict(r)) for t, r in out["plain"]] == expected
            assert [(t, dict(r)) for t, r in out["inverse"]] == expected
            for _, records in out["inverse"]:
                assert len(records) == len({k for k, _ in records})  # one pair per key

        check()


# --------------------------------------------------------------------------- derived windows


def test_count_by_window_matches_pyspark(ember_master):
    out = run_batches(lambda s: s.countByWindow(2.5, 0.5), ranges(6), interval=0.5,
                      master=ember_master, num_batches=12)
    # PySpark's test_count_by_window_large; then the window is empty: a count of 0
    assert out == [[1], [3], [6], [10], [15], [20], [18], [15], [11], [6], [0], [0]]


def test_count_by_value_and_window_drops_zero_counts(ember_master):
    out = run_batches(lambda s: s.countByValueAndWindow(2.5, 0.5), ranges(6), interval=0.5,
                      master=ember_master, num_batches=12, ordered=False)
    assert out == [  # PySpark's test_count_by_value_and_window, then the empty windows
        [(0, 1)],
        [(0, 2), (1, 1)],
        [(0, 3), (1, 2), (2, 1)],
        [(0, 4), (1, 3), (2, 2), (3, 1)],
        [(0, 5), (1, 4), (2, 3), (3, 2), (4, 1)],
        [(0, 5), (1, 5), (2, 4), (3, 3), (4, 2), (5, 1)],
        [(0, 4), (1, 4), (2, 4), (3, 3), (4, 2), (5, 1)],
        [(0, 3), (1, 3), (2, 3), (3, 3), (4, 2), (5, 1)],
        [(0, 2), (1, 2), (2, 2), (3, 2), (4, 2), (5, 1)],
        [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1)],
        [],
        [],
    ]


def test_group_by_key_and_window_matches_pyspark(ember_master):
    batches = [[("a", i)] for i in range(5)]
    out = run_batches(lambda s: s.groupByKeyAndWindow(1.5, 0.5).mapValues(sorted), batches,
                      interval=0.5, master=ember_master, num_batches=7)
    assert out == [[("a", [0])], [("a", [0, 1])], [("a", [0, 1, 2])], [("a", [1, 2, 3])],
                   [("a", [2, 3, 4])], [("a", [3, 4])], [("a", [4])]]


def test_group_by_key_and_window_with_slide_and_partitions(ember_master):
    builds = {"g": lambda s: s.groupByKeyAndWindow(3, 2, 3).mapValues(sorted)}
    with Context(ember_master, "windows") as sc:
        out = run_windowed(sc, PAIRS, builds, interval=1, num_batches=8,
                           checkpoint_dir=None)["g"]
    for t, records in out:
        window = [r for tt, rs in window_reference(PAIRS, 3, 2, 8) if tt * 1000 == t
                  for r in rs]
        grouped: dict = defaultdict(list)
        for k, v in window:
            grouped[k].append(v)
        assert dict(records) == {k: sorted(v) for k, v in grouped.items()}, t
    assert [t for t, _ in out] == [2000, 4000, 6000, 8000]


def test_reduce_by_window_with_and_without_inverse(ember_master):
    numbers = [[1, 2], [3], [], [4, 5, 6], [7]]
    builds = {
        "plain": lambda s: s.reduceByWindow(operator.add, None, 2, 1),
        "inverse": lambda s: s.reduceByWindow(operator.add, operator.sub, 2, 1),
        "slide2": lambda s: s.reduceByWindow(operator.add, operator.sub, 3, 2),
    }
    with Context(ember_master, "windows") as sc, tempfile.TemporaryDirectory() as d:
        out = run_windowed(sc, numbers, builds, interval=1, num_batches=7, checkpoint_dir=d)
    assert out["plain"] == [(1000, [3]), (2000, [6]), (3000, [3]), (4000, [15]),
                            (5000, [22]), (6000, [7]), (7000, [])]
    # the inverse keeps the (single) key: an empty window reduces to the inverse's zero
    assert out["inverse"] == [(1000, [3]), (2000, [6]), (3000, [3]), (4000, [15]),
                              (5000, [22]), (6000, [7]), (7000, [0])]
    assert out["slide2"] == [(2000, [6]), (4000, [18]), (6000, [22])]


# --------------------------------------------------------------------------- checkpoints


def _rdds_of(sc: Context, build: Callable[[DStream], DStream], *, interval: float,
             num_batches: int, checkpoint_dir: str | None) -> list:
    """``[(batch time ms, rdd, its records)]`` of the built stream, collected each batch."""
    rdds: list = []

    def keep(t, rdd):
        rdds.append((round(t.timestamp() * 1000), rdd, rdd.collect()))

    ssc = StreamingContext(sc, interval, clock=ManualClock())
    try:
        if checkpoint_dir is not None:
            ssc.checkpoint(checkpoint_dir)
        build(ssc.queueStream([[("k", i % 3)] for i in range(num_batches)])).foreachRDD(keep)
        ssc.start()
        advance_batches(ssc, num_batches)
        ssc.awaitTerminationOrTimeout(0)
    finally:
        ssc.stop(stopSparkContext=False)
    return rdds


@pytest.mark.parametrize(
    "build",
    [
        lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 2, 1),
        lambda s: s.countByWindow(2, 1),
        lambda s: s.reduceByWindow(operator.add, operator.sub, 2, 1),
        lambda s: s.countByValueAndWindow(2, 1),
    ],
    ids=["reduceByKeyAndWindow", "countByWindow", "reduceByWindow", "countByValueAndWindow"],
)
def test_incremental_windows_need_a_checkpoint_directory(build):
    with Context("inline", "windows") as sc:
        ssc = StreamingContext(sc, 1, clock=ManualClock())
        build(ssc.queueStream([[("a", 1)]])).pprint()
        with pytest.raises(ValueError, match=r"ReducedWindowedDStream\[\d+\] keeps state across "
                                             r"batches .* needs a checkpoint directory: call "
                                             r"ssc\.checkpoint\(directory\) before start\(\)"):
            ssc.start()
        ssc.stop(stopSparkContext=False)


def test_windows_without_inverse_need_no_checkpoint_directory():
    with Context("inline", "windows") as sc:
        rdds = _rdds_of(sc, lambda s: s.reduceByKeyAndWindow(operator.add, None, 2, 1)
                        .union(s.window(2, 1)), interval=1, num_batches=2, checkpoint_dir=None)
    assert [records for _, _, records in rdds] == [[("k", 0), ("k", 0)],
                                                   [("k", 1), ("k", 0), ("k", 1)]]


def test_incremental_window_default_checkpoint_interval_is_10s_rounded_up_to_the_slide(tmp_path):
    with Context("inline", "windows") as sc:
        rdds = _rdds_of(sc, lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 6, 3),
                        interval=1, num_batches=25, checkpoint_dir=str(tmp_path / "a"))
        assert [t for t, rdd, _ in rdds if rdd.isCheckpointed()] == [12000, 24000]
        rdds = _rdds_of(sc, lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 1.2,
                                                             0.6),
                        interval=0.2, num_batches=105, checkpoint_dir=str(tmp_path / "b"))
        assert [t for t, rdd, _ in rdds if rdd.isCheckpointed()] == [10200, 20400]


def test_incremental_window_checkpoint_interval_can_be_set(tmp_path):
    with Context("inline", "windows") as sc:
        rdds = _rdds_of(sc, lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 3, 1)
                        .checkpoint(4), interval=1, num_batches=13,
                        checkpoint_dir=str(tmp_path))
    assert [t for t, rdd, _ in rdds if rdd.isCheckpointed()] == [4000, 8000, 12000]


def test_incremental_window_lineage_stays_bounded(ember_master, tmp_path):
    with Context(ember_master, "windows") as sc:
        rdds = _rdds_of(sc, lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 3, 1),
                        interval=1, num_batches=50, checkpoint_dir=str(tmp_path))
        lengths = [len(rdd.toDebugString().splitlines()) for _, rdd, _ in rdds]
    checkpointed = [t for t, rdd, _ in rdds if rdd.isCheckpointed()]
    assert checkpointed == [10000, 20000, 30000, 40000, 50000]
    assert [lengths[t // 1000 - 1] for t in checkpointed] == [1] * 5  # cut at the checkpoint
    # between two checkpoints the lineage grows by one step a batch, and then starts over:
    # it does not grow with the number of batches
    periods = [lengths[i:i + 10] for i in (9, 19, 29, 39)]  # batches 10-19, 20-29, ...
    assert periods[0] == periods[1] == periods[2] == periods[3]
    assert periods[0][0] == 1 and periods[0] == sorted(periods[0])
    assert rdds[-1][2] == [("k", 3)]  # 47 % 3 + 48 % 3 + 49 % 3 = 2 + 0 + 1
