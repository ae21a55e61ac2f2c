"""``updateStateByKey`` and ``mapWithState`` against plain-Python references, on both
executors, under the manual clock: the update function's arguments, key removal, initial
state, partitions, the ``State`` API, per-record calls, snapshots, timeouts at checkpoints,
the delta chain of ``StateMap`` layers, checkpoint intervals and lineage truncation.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import cloudpickle
import pytest
from ember import Context
from ember.streaming import DStream, StateSpec, StreamingContext
from ember.streaming.state import State
from ember.testing import ManualClock, advance_batches

# The mapping functions below run on local[2]'s workers, which cannot import this test file.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Batch(NamedTuple):
    """What an output saw at one batch."""

    time_ms: int
    records: list
    checkpointed: bool  # the RDD given to the output was saved to the checkpoint directory
    lineage: int  # lines of its toDebugString


def run_state(sc: Context, batches: list[list],
              build: Callable[[DStream], dict[str, DStream]], *, num_batches: int,
              interval: float = 1.0, checkpoint_dir: str | None) -> dict[str, list[Batch]]:
    """Run the streams ``build(input_stream)`` returns (by name) over a queue stream of
    ``batches``; collect each one's RDD at every batch, in definition order."""
    out: dict[str, list[Batch]] = {}
    ssc = StreamingContext(sc, interval, clock=ManualClock())
    try:
        if checkpoint_dir is not None:
            ssc.checkpoint(checkpoint_dir)
        for name, stream in build(ssc.queueStream(batches)).items():
            out[name] = []

            def record(t, rdd, seen=out[name]):
                records = rdd.collect()
                seen.append(Batch(round(t.timestamp() * 1000), records, rdd.isCheckpointed(),
                                  len(rdd.toDebugString().splitlines())))

            stream.foreachRDD(record)
        ssc.start()
        advance_batches(ssc, num_batches)
        ssc.awaitTerminationOrTimeout(0)  # raises a batch's error, if any
    finally:
        ssc.stop(stopSparkContext=False)
    return out


@pytest.fixture
def sc(ember_master, ember_no_leaks):
    """One Context per test, on each executor (leaving no thread or process behind)."""
    with Context(ember_master, "state-tests") as ctx:
        yield ctx


@pytest.fixture
def ckpt(tmp_path) -> str:
    return str(tmp_path / "checkpoints")


def as_dicts(batches: list[Batch]) -> list[dict]:
    out = []
    for b in batches:
        d = dict(b.records)
        assert len(d) == len(b.records), f"a key twice in {b.records}"
        out.append(d)
    return out


PAIRS = [[("a", 1), ("b", 2), ("a", 3)], [], [("c", 4)], [("b", 5), ("b", 6), ("d", 7)],
         [("a", 8)], [], [("c", 9), ("a", 10)]]


def running_sums(batches: list[list], num_batches: int, initial: dict | None = None) -> list:
    state = dict(initial or {})
    out = []
    for i in range(num_batches):
        for k, v in batches[i] if i < len(batches) else []:
            state[k] = state.get(k, 0) + v
        out.append(dict(state))
    return out


# --------------------------------------------------------------------------- updateStateByKey


def test_update_state_by_key_keeps_running_sums(sc, ckpt):
    out = run_state(sc, PAIRS, lambda s: {
        "sums": s.updateStateByKey(lambda vs, prev: (prev or 0) + sum(vs))},
        num_batches=9, checkpoint_dir=ckpt)
    assert as_dicts(out["sums"]) == running_sums(PAIRS, 9)


def test_update_function_gets_the_new_values_and_the_previous_state(sc, ckpt):
    def history(new_values: list, previous: Any) -> list:
        assert isinstance(new_values, list)  # a list, empty for keys without new data
        return (["<none>"] if previous is None else previous) + [sorted(new_values)]

    batches = [[("a", 2), ("a", 1)], [("b", 5)], [], [("a", 3)]]
    out = run_state(sc, batches, lambda s: {"h": s.updateStateByKey(history)}, num_batches=4,
                    checkpoint_dir=ckpt)
    assert as_dicts(out["h"]) == [
        {"a": ["<none>", [1, 2]]},
        {"a": ["<none>", [1, 2], []], "b": ["<none>", [5]]},
        {"a": ["<none>", [1, 2], [], []], "b": ["<none>", [5], []]},
        {"a": ["<none>", [1, 2], [], [], [3]], "b": ["<none>", [5], [], []]},
    ]


def test_update_function_returning_none_removes_the_key(sc, ckpt):
    def count_until_stop(new_values: list, previous: Any) -> Any:
        if "stop" in new_values:
            return None
        return (previous or 0) + len(new_values)

    batches = [[("a", 1), ("b", 1)], [("a", "stop")], [("b", 1)], [("a", 1), ("b", "stop")], []]
    out = run_state(sc, batches, lambda s: {"n": s.updateStateByKey(count_until_stop)},
                    num_batches=5, checkpoint_dir=ckpt)
    assert as_dicts(out["n"]) == [{"a": 1, "b": 1}, {"b": 1}, {"b": 2}, {"a": 1}, {"a": 1}]


@pytest.mark.parametrize("as_rdd", [False, True], ids=["list", "rdd"])
def test_update_state_by_key_starts_from_the_initial_rdd(sc, ckpt, as_rdd):
    initial = [("a", 100), ("z", 7)]

    def build(s: DStream) -> dict:
        init = s.context().sparkContext.parallelize(initial, 3) if as_rdd else initial
        return {"sums": s.updateStateByKey(lambda vs, prev: (prev or 0) + sum(vs),
                                           initialRDD=init)}

    out = run_state(sc, PAIRS[:4], build, num_batches=4, checkpoint_dir=ckpt)
    assert as_dicts(out["sums"]) == running_sums(PAIRS, 4, dict(initial))


def test_update_state_by_key_num_partitions(sc, ckpt):
    out = run_state(sc, PAIRS[:3], lambda s: {
        "parts": s.updateStateByKey(lambda vs, prev: (prev or 0) + sum(vs), 3).glom().map(len)},
        num_batches=3, checkpoint_dir=ckpt)
    assert [len(b.records) for b in out["parts"]] == [3, 3, 3]


def test_update_state_by_key_state_survives_many_batches(sc, ckpt):
    rng = random.Random(7)
    batches = [[(rng.randrange(20), rng.randrange(1, 5)) for _ in range(rng.randrange(4))]
               for _ in range(45)]
    out = run_state(sc, batches, lambda s: {
        "sums": s.updateStateByKey(lambda vs, prev: (prev or 0) + sum(vs)).checkpoint(4)},
        num_batches=45, checkpoint_dir=ckpt)
    assert as_dicts(out["sums"]) == running_sums(batches, 45)
    assert [b.time_ms for b in out["sums"] if b.checkpointed] == list(range(4000, 45000, 4000))


# --------------------------------------------------------------------------- mapWithState


def running_total(key: Any, value: Any, state: State) -> tuple:
    """``(key, total)``: the running total of the key's values."""
    total = (state.get() if state.exists() else 0) + value
    state.update(total)
    return (key, total)


def test_map_with_state_maps_every_new_record_once_with_its_state(sc, ckpt):
    out = run_state(sc, PAIRS, lambda s: {
        "mapped": s.mapWithState(StateSpec.function(running_total))},
        num_batches=9, checkpoint_dir=ckpt)
    state: dict = {}
    expected = []
    for i in range(9):
        batch = []
        for k, v in PAIRS[i] if i < len(PAIRS) else []:
            state[k] = state.get(k, 0) + v
            batch.append((k, state[k]))  # records of a key in their order in the batch
        expected.append(sorted(batch))
    assert [sorted(b.records) for b in out["mapped"]] == expected


def test_map_with_state_calls_the_function_only_for_new_records(sc, ckpt):
    """2 records in a batch: exactly 2 calls, whatever the size of the state (5000 keys),
    on plain, folding and checkpoint batches alike."""
    calls = sc.accumulator(0)

    def counted(key: Any, value: Any, state: State) -> tuple:
        calls.add(1)
        return running_total(key, value, state)

    sizes = [2, 0, 3, 1, 2] * 6
    batches = [[(10_000 + 10 * b + i, 1) for i in range(n)] for b, n in enumerate(sizes)]
    seen: list[int] = []
    spec = StateSpec.function(counted).initialState([(k, 0) for k in range(5000)])

    def build(s: DStream) -> dict:
        mapped = s.mapWithState(spec).checkpoint(5)
        mapped.foreachRDD(lambda rdd: (rdd.count(), seen.append(calls.value)))
        return {"mapped": mapped, "snapshots": mapped.stateSnapshots().count()}

    out = run_state(sc, batches, build, num_batches=len(sizes), checkpoint_dir=ckpt)
    assert [len(b.records) for b in out["mapped"]] == sizes
    per_batch = [b - a for a, b in zip([0, *seen], seen, strict=False)]
    assert per_batch == sizes
    assert calls.value == sum(sizes)  # the snapshots and the checkpoints called it no more
    assert [b.records for b in out["snapshots"]] == [
        [5000 + sum(sizes[:i + 1])] for i in range(len(sizes))]  # the state grew by new keys


def test_state_snapshots_hold_the_whole_state_after_each_batch(sc, ckpt):
    def total_or_remove(key: Any, value: int, state: State) -> Any:
        if value == 0:
            state.remove()
            return (key, None)
        return running_total(key, value, state)

    batches = [[("a", 1), ("b", 2)], [("a", 0)], [], [("b", 3), ("a", 4)], [("c", 1)],
               [("b", 0), ("c", 0)]]
    out = run_state(sc, batches, lambda s: {
        "snapshots": s.mapWithState(StateSpec.function(total_or_remove)).stateSnapshots()},
        num_batches=7, checkpoint_dir=ckpt)
    assert as_dicts(out["snapshots"]) == [{"a": 1, "b": 2}, {"b": 2}, {"b": 2},
                                          {"a": 4, "b": 5}, {"a": 4, "b": 5, "c": 1},
                                          {"a": 4}, {"a": 4}]


@pytest.mark.parametrize("as_rdd", [False, True], ids=["list", "rdd"])
def test_map_with_state_starts_from_the_initial_state(sc, ckpt, as_rdd):
    initial = [("a", 100), ("z", 7)]

    def build(s: DStream) -> dict:
        init = s.context().sparkContext.parallelize(initial, 3) if as_rdd else initial
        mapped = s.mapWithState(StateSpec.function(running_total).initialState(init))
        return {"mapped": mapped, "snapshots": mapped.stateSnapshots()}

    out = run_state(sc, PAIRS[:4], build, num_batches=4, checkpoint_dir=ckpt)
    assert as_dicts(out["snapshots"]) == running_sums(PAIRS, 4, dict(initial))
    assert sorted(out["mapped"][0].records) == [("a", 101), ("a", 104), ("b", 2)]


def test_map_with_state_num_partitions(sc, ckpt):
    def build(s: DStream) -> dict:
        mapped = s.mapWithState(StateSpec.function(running_total).numPartitions(3))
        return {"parts": mapped.stateSnapshots().glom().map(len)}

    out = run_state(sc, PAIRS[:2], build, num_batches=2, checkpoint_dir=ckpt)
    assert [len(b.records) for b in out["parts"]] == [3, 3]


def test_map_with_state_survives_many_batches_through_delta_chain_folds(sc, ckpt):
    """45 batches of updates and removals: the copy-on-write layers fold every 20 batches;
    no checkpoint in the run (interval 50 s), so only the folds flatten the chain."""
    rng = random.Random(11)
    batches = [[(rng.randrange(30), rng.randrange(0, 4)) for _ in range(rng.randrange(6))]
               for _ in range(45)]

    def total_or_remove(key: Any, value: int, state: State) -> Any:
        if value == 0:
            if state.exists():
                state.remove()
            return (key, None)
        return running_total(key, value, state)

    def build(s: DStream) -> dict:
        mapped = s.mapWithState(StateSpec.function(total_or_remove)).checkpoint(50)
        return {"mapped": mapped, "snapshots": mapped.stateSnapshots()}

    out = run_state(sc, batches, build, num_batches=45, checkpoint_dir=ckpt)
    state: dict = {}
    expected_snapshots, expected_mapped = [], []
    for batch in batches:
        mapped = []
        for k, v in batch:
            if v == 0:
                state.pop(k, None)
                mapped.append((k, None))
            else:
                state[k] = state.get(k, 0) + v
                mapped.append((k, state[k]))
        expected_snapshots.append(dict(state))
        expected_mapped.append(sorted(mapped, key=repr))
    assert as_dicts(out["snapshots"]) == expected_snapshots
    assert [sorted(b.records, key=repr) for b in out["mapped"]] == expected_mapped
    assert not any(b.checkpointed for b in out["snapshots"])


# --------------------------------------------------------------------------- the State API


def test_state_get_without_a_state_raises():
    state = State()
    assert not state.exists()
    assert state.getOption() is None
    with pytest.raises(ValueError, match=r"no state; check state\.exists\(\) first"):
        state.get()
    state.update(0)
    assert state.exists() and state.get() == 0 and state.getOption() == 0


def test_state_update_after_remove_raises():
    state = State(5)
    assert state.get() == 5
    state.remove()
    assert not state.exists()
    with pytest.raises(ValueError, match="already removed"):
        state.update(6)
    with pytest.raises(ValueError, match="already removed"):
        state.remove()


def test_a_timing_out_state_cannot_be_updated_or_removed():
    state = State(5, timing_out=True)
    assert state.isTimingOut() and state.get() == 5
    with pytest.raises(ValueError, match="timing out and cannot be updated"):
        state.update(6)
    with pytest.raises(ValueError, match="timing-out key is removed anyway"):
        state.remove()


def test_state_spec_validates_its_options():
    with pytest.raises(TypeError, match=r"StateSpec\.function expects a function"):
        StateSpec.function(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="numPartitions must be an integer >= 1"):
        StateSpec.function(running_total).numPartitions(0)
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        StateSpec.function(running_total).timeout(0)


def _observe(key: Any, value: Any, state: State) -> tuple:
    """``(key, value, state before, timing out, what update() did)``, then a running total."""
    before = state.getOption()
    timing_out = state.isTimingOut()
    try:
        state.update((before or 0) + (value or 0))
        updated = "updated"
    except ValueError as exc:
        updated = str(exc).split(":")[0]
    return (key, value, before, timing_out, updated)


def test_timeout_removes_idle_keys_at_the_first_checkpoint_after_the_idle_period(sc, ckpt):
    # batches at t = 1..10 s; state checkpoints (full scans) at 3, 6, 9 s; timeout 2 s
    batches = [
        [("a", 1), ("b", 1), ("e", 1)],  # 1
        [("c", 1), ("e", 1)],  # 2
        [("b", 1), ("e", 1)],  # 3: scan — a idle 2 s: times out; b touched now
        [("e", 1)],  # 4: c has been idle 2 s, but this is no checkpoint
        [("d", 1), ("e", 1)],  # 5
        [("e", 1)],  # 6: scan — b (idle 3 s) and c (idle 4 s) time out; d idle 1 s
        [("a", 5), ("e", 1)],  # 7: a again, without a state
        [("e", 1)],  # 8
        [("e", 1)],  # 9: scan — d (idle 4 s) and a (idle 2 s) time out
        [],  # 10
    ]

    def build(s: DStream) -> dict:
        mapped = s.mapWithState(StateSpec.function(_observe).timeout(2)).checkpoint(3)
        return {"mapped": mapped, "snapshots": mapped.stateSnapshots()}

    out = run_state(sc, batches, build, num_batches=10, checkpoint_dir=ckpt)
    timed_out = [sorted(r for r in b.records if r[3]) for b in out["mapped"]]
    update_refused = "State.update()"
    assert timed_out == [
        [], [], [("a", None, 1, True, update_refused)], [], [],
        [("b", None, 2, True, update_refused), ("c", None, 1, True, update_refused)],
        [], [],
        [("a", None, 5, True, update_refused), ("d", None, 1, True, update_refused)],
        [],
    ]
    assert ("a", 5, None, False, "updated") in out["mapped"][6].records  # a started over
    assert as_dicts(out["snapshots"]) == [
        {"a": 1, "b": 1, "e": 1}, {"a": 1, "b": 1, "c": 1, "e": 2}, {"b": 2, "c": 1, "e": 3},
        {"b": 2, "c": 1, "e": 4}, {"b": 2, "c": 1, "d": 1, "e": 5}, {"d": 1, "e": 6},
        {"a": 5, "d": 1, "e": 7}, {"a": 5, "d": 1, "e": 8}, {"e": 9}, {"e": 9},
    ]


def test_timeout_waits_for_the_default_checkpoint_interval(sc, ckpt):
    """The default state checkpoint interval is 10 s: a key idle since 1 s (timeout 1 s)
    times out at 10 s, not before."""
    batches = [[("a", 1)]] + [[("b", 1)]] * 11

    def build(s: DStream) -> dict:
        return {"mapped": s.mapWithState(StateSpec.function(_observe).timeout(1))}

    out = run_state(sc, batches, build, num_batches=12, checkpoint_dir=ckpt)
    times = [b.time_ms for b in out["mapped"] for r in b.records if r[3]]
    assert times == [10_000]


# --------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("which", ["updateStateByKey", "mapWithState"])
def test_stateful_streams_need_a_checkpoint_directory(which):
    with Context("inline", "state-tests") as sc:
        ssc = StreamingContext(sc, 1, clock=ManualClock())
        s = ssc.queueStream([[("a", 1)]])
        if which == "updateStateByKey":
            s.updateStateByKey(lambda vs, prev: 0).pprint()
        else:
            s.mapWithState(StateSpec.function(running_total)).pprint()
        with pytest.raises(ValueError, match=r"keeps state across batches \(updateStateByKey, "
                                             r"mapWithState or .*\) and needs a checkpoint "
                                             r"directory: call ssc\.checkpoint\(directory\) "
                                             r"before start\(\)"):
            ssc.start()
        ssc.stop(stopSparkContext=False)


def test_state_checkpoint_interval_defaults_to_10s_rounded_up_to_the_slide(ckpt):
    with Context("inline", "state-tests") as sc:
        def build(s: DStream) -> dict:
            mapped = s.mapWithState(StateSpec.function(running_total))
            return {"update": s.updateStateByKey(lambda vs, prev: (prev or 0) + sum(vs)),
                    "snapshots": mapped.stateSnapshots()}

        out = run_state(sc, [[("a", 1)]] * 70, build, num_batches=70, interval=0.3,
                        checkpoint_dir=ckpt)
    # 10 s is not a multiple of 0.3 s: the smallest multiple above it is 10.2 s
    assert [b.time_ms for b in out["update"] if b.checkpointed] == [10_200, 20_400]
    # the snapshot of a checkpointed state: two RDDs deep (snapshot -> saved state)
    assert [b.time_ms for b in out["snapshots"] if b.lineage <= 2] == [10_200, 20_400]


def test_map_with_state_checkpoint_interval_is_set_on_the_returned_stream(sc, ckpt):
    def build(s: DStream) -> dict:
        mapped = s.mapWithState(StateSpec.function(running_total)).checkpoint(2)
        return {"mapped": mapped, "snapshots": mapped.stateSnapshots()}

    out = run_state(sc, [[("a", 1)]] * 7, build, num_batches=7, checkpoint_dir=ckpt)
    assert [b.time_ms for b in out["snapshots"] if b.lineage <= 2] == [2000, 4000, 6000]
    assert [b.records for b in out["mapped"]] == [[("a", i)] for i in range(1, 8)]


@pytest.mark.parametrize("which", ["updateStateByKey", "mapWithState"])
def test_state_lineage_is_cut_at_checkpoints_and_stays_bounded(sc, ckpt, which):
    def build(s: DStream) -> dict:
        if which == "updateStateByKey":
            return {"state": s.updateStateByKey(lambda vs, prev: (prev or 0) + sum(vs))}
        return {"state": s.mapWithState(StateSpec.function(running_total)).stateSnapshots()}

    out = run_state(sc, [[("a", 1), ("b", 2)]] * 50, build, num_batches=50, checkpoint_dir=ckpt)
    lengths = [b.lineage for b in out["state"]]
    after_checkpoint = 1 if which == "updateStateByKey" else 2
    assert [lengths[t - 1] for t in (10, 20, 30, 40, 50)] == [after_checkpoint] * 5
    periods = [lengths[i:i + 10] for i in (9, 19, 29, 39)]  # batches 10-19, 20-29, ...
    assert periods[0] == periods[1] == periods[2] == periods[3]  # no growth with the batches
    assert dict(out["state"][-1].records) == {"a": 50, "b": 100}


def test_only_the_newest_state_stays_in_memory(sc, ckpt):
    """States are remembered for two checkpoint intervals (20 batches here), but a batch
    reads only the previous one: older states leave the workers' memory."""
    rdds: list = []

    def keep(rdd):
        rdd.count()
        rdds.append(rdd)

    ssc = StreamingContext(sc, 1, clock=ManualClock())
    try:
        ssc.checkpoint(ckpt)
        ssc.queueStream([[("a", 1)]] * 15).updateStateByKey(
            lambda vs, prev: (prev or 0) + sum(vs)).foreachRDD(keep)
        ssc.start()
        advance_batches(ssc, 15)
        ssc.awaitTerminationOrTimeout(0)
        assert [rdd.is_cached for rdd in rdds[:-2]] == [False] * 13
        assert rdds[-1].is_cached
        assert rdds[-1].collect() == [("a", 15)]
    finally:
        ssc.stop(stopSparkContext=False)
