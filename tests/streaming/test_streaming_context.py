"""StreamingContext: construction, the guide's lifecycle rules, and the ways to make streams.

Time is driven by a ManualClock (``advance_batches``), so no test sleeps; every test that runs
batches runs on both the inline and the ``local[2]`` executor (``ember_master``).
"""

from __future__ import annotations

import datetime
import threading

import pytest
from ember import Conf, Context
from ember.errors import ContextError, PluginNotFoundError
from ember.streaming import DStream, StreamingContext, StreamingContextState, StreamingListener
from ember.testing import ManualClock, advance_batches


def batch_ms(t: datetime.datetime) -> int:
    return round(t.timestamp() * 1000)


def collect(stream: DStream, out: list) -> None:
    """Record ``(batch time in ms, batch contents)`` of ``stream`` into ``out``."""
    stream.foreachRDD(lambda t, rdd: out.append((batch_ms(t), rdd.collect())))


@pytest.fixture
def sc(ember_context: Context, ember_master: str) -> Context:
    return ember_context


@pytest.fixture
def make_ssc(request):
    """Build StreamingContexts on a ManualClock; any left running are stopped afterwards."""
    made: list[StreamingContext] = []

    def make(interval: float = 1.0, context: Context | None = None) -> StreamingContext:
        ctx = context if context is not None else request.getfixturevalue("ember_context")
        ssc = StreamingContext(ctx, interval, clock=ManualClock())
        made.append(ssc)
        return ssc

    yield make
    for ssc in made:
        ssc.stop(stopSparkContext=False)


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize("interval, ms", [(1, 1000), (2.5, 2500), (0.1, 100), (0.001, 1)])
def test_batch_duration_is_float_seconds_and_may_be_sub_second(ember_context, interval, ms):
    ssc = StreamingContext(ember_context, interval)
    assert ssc.batchDuration == pytest.approx(ms / 1000)
    assert ssc.sparkContext is ember_context
    assert ssc.getState() is StreamingContextState.INITIALIZED


@pytest.mark.parametrize(
    "bad", [0, 0.0, -1, -0.5, "1", "abc", [1], True, float("nan"), float("inf"), 0.0001]
)
def test_a_batch_duration_that_is_not_a_positive_number_is_a_value_error_naming_it(
        ember_context, bad):
    with pytest.raises(ValueError, match="batchDuration") as info:
        StreamingContext(ember_context, bad)
    assert repr(bad) in str(info.value)


def test_batch_duration_is_required(ember_context):
    with pytest.raises(ValueError, match="batchDuration is required"):
        StreamingContext(ember_context)


def test_the_context_argument_must_be_a_context_or_a_master_string():
    with pytest.raises(TypeError, match=r"ember\.Context or a master string, got int"):
        StreamingContext(42, 1)


def test_a_stopped_context_cannot_host_a_streaming_context():
    sc = Context("inline", "stopped")
    sc.stop()
    with pytest.raises(ContextError, match="has been stopped"):
        StreamingContext(sc, 1)


def test_a_master_string_builds_its_own_context_which_stop_stops_too():
    ssc = StreamingContext("local[2]", 1, appName="x", clock=ManualClock())
    try:
        sc = ssc.sparkContext
        assert isinstance(sc, Context)
        assert sc.master == "local[2]"
        assert sc.appName == "x"
        assert sc.defaultParallelism == 2
        out: list = []
        collect(ssc.queueStream([[1, 2, 3]]).map(lambda x: x * 10), out)
        ssc.start()
        advance_batches(ssc, 1)
        assert out == [(1000, [10, 20, 30])]
    finally:
        ssc.stop()
    with pytest.raises(ContextError, match="has been stopped"):
        sc.parallelize([1])


def test_the_clock_comes_from_the_conf():
    conf = Conf().set("ember.streaming.clock", "manual")
    with Context("inline", "clock", conf) as sc:
        assert isinstance(StreamingContext(sc, 1).clock, ManualClock)
    conf = Conf().set("ember.streaming.clock", "sundial")
    with Context("inline", "clock", conf) as sc:
        with pytest.raises(ValueError, match="'system' or 'manual', got 'sundial'"):
            StreamingContext(sc, 1)


# --------------------------------------------------------------------------- lifecycle rules


def test_no_new_streams_or_output_operations_after_start(sc, make_ssc):
    ssc = make_ssc()
    stream = ssc.queueStream([[1]])
    stream.pprint()
    ssc.start()
    assert ssc.getState() is StreamingContextState.ACTIVE
    message = "after the StreamingContext started.*define the whole computation before"
    with pytest.raises(ContextError, match=message):
        ssc.queueStream([[2]])
    with pytest.raises(ContextError, match=message):
        stream.map(lambda x: x)
    with pytest.raises(ContextError, match=message):
        stream.foreachRDD(lambda rdd: None)
    with pytest.raises(ContextError, match=message):
        stream.pprint()
    with pytest.raises(ContextError, match=message):
        ssc.remember(10)
    with pytest.raises(ContextError, match="already been started"):
        ssc.start()


def test_a_stopped_streaming_context_cannot_restart_nor_grow(sc, make_ssc):
    ssc = make_ssc()
    ssc.queueStream([[1]]).pprint()
    ssc.start()
    ssc.stop(stopSparkContext=False)
    assert ssc.getState() is StreamingContextState.STOPPED
    with pytest.raises(ContextError, match="stopped and cannot be restarted; create a new one"):
        ssc.start()
    with pytest.raises(ContextError, match="has been stopped; create a new one"):
        ssc.queueStream([[1]])


def test_only_one_streaming_context_is_active_in_a_process(sc, make_ssc):
    first, second = make_ssc(), make_ssc()
    first.queueStream([[1]]).pprint()
    second.queueStream([[1]]).pprint()
    first.start()
    with pytest.raises(ContextError, match="only one StreamingContext may be active"):
        second.start()
    assert second.getState() is StreamingContextState.INITIALIZED
    assert StreamingContext.getActive() is first


def test_stop_without_the_context_lets_a_new_streaming_context_run_on_it(sc, make_ssc):
    first_out: list = []
    first = make_ssc()
    collect(first.queueStream([[1, 2]]), first_out)
    first.start()
    advance_batches(first, 1)
    first.stop(stopSparkContext=False)
    assert sc.parallelize([1, 2, 3]).sum() == 6  # the Context still works

    second_out: list = []
    second = make_ssc()
    collect(second.queueStream([["a"], ["b"]]).map(str.upper), second_out)
    second.start()
    advance_batches(second, 2)
    second.stop(stopSparkContext=False)
    assert first_out == [(1000, [1, 2])]
    assert second_out == [(1000, ["A"]), (2000, ["B"])]


def test_stop_by_default_stops_the_context_too(sc, make_ssc):
    ssc = make_ssc()
    ssc.queueStream([[1]]).pprint()
    ssc.start()
    ssc.stop()
    with pytest.raises(ContextError, match="has been stopped"):
        sc.parallelize([1]).count()
    with pytest.raises(ContextError, match="has been stopped"):
        StreamingContext(sc, 1)


def test_starting_without_an_output_operation_is_an_error(sc, make_ssc):
    ssc = make_ssc()
    ssc.queueStream([[1]]).map(lambda x: x)
    with pytest.raises(ContextError, match=r"no output operations registered.*call pprint\(\)"):
        ssc.start()
    assert ssc.getState() is StreamingContextState.INITIALIZED
    assert StreamingContext.getActive() is None


def test_stop_twice_and_stop_before_start_are_fine(sc, make_ssc):
    ssc = make_ssc()
    ssc.queueStream([[1]]).pprint()
    ssc.start()
    ssc.stop(stopSparkContext=False)
    ssc.stop(stopSparkContext=False)
    assert ssc.getState() is StreamingContextState.STOPPED
    never_started = make_ssc()
    never_started.stop(stopSparkContext=False)
    never_started.stop(stopSparkContext=False)
    assert never_started.getState() is StreamingContextState.STOPPED
    assert never_started.awaitTerminationOrTimeout(0) is True
    assert sc.parallelize([1]).count() == 1


# --------------------------------------------------------------------------- active contexts


def test_get_active_follows_start_and_stop(sc, make_ssc):
    ssc = make_ssc()
    ssc.queueStream([[1]]).pprint()
    assert StreamingContext.getActive() is None
    ssc.start()
    assert StreamingContext.getActive() is ssc
    ssc.stop(stopSparkContext=False)
    assert StreamingContext.getActive() is None


def test_get_active_or_create_returns_the_active_one_or_calls_setup(sc, make_ssc):
    calls: list[StreamingContext] = []

    def setup() -> StreamingContext:
        new = make_ssc()
        calls.append(new)
        return new

    created = StreamingContext.getActiveOrCreate(None, setup)
    assert calls == [created]
    created.queueStream([[1]]).pprint()
    created.start()
    assert StreamingContext.getActiveOrCreate(None, setup) is created
    assert len(calls) == 1  # not called while one is active
    created.stop(stopSparkContext=False)
    with pytest.raises(TypeError, match="setupFunc must return a StreamingContext"):
        StreamingContext.getActiveOrCreate(None, lambda: "not a context")


# --------------------------------------------------------------------------- awaiting


def test_await_termination_needs_a_started_context(sc, make_ssc):
    ssc = make_ssc()
    with pytest.raises(ContextError, match="needs a started StreamingContext"):
        ssc.awaitTermination(0)
    with pytest.raises(ContextError, match="needs a started StreamingContext"):
        ssc.awaitTerminationOrTimeout(0)


def test_await_termination_times_out_while_running_and_returns_once_stopped(sc, make_ssc):
    ssc = make_ssc()
    ssc.queueStream([[1]]).pprint()
    ssc.start()
    assert ssc.awaitTerminationOrTimeout(0.05) is False
    assert ssc.awaitTermination(0.05) is None
    results: list[bool] = []
    waiting = threading.Event()

    def wait() -> None:
        waiting.set()
        results.append(ssc.awaitTerminationOrTimeout(60))

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert waiting.wait(10)
    ssc.stop(stopSparkContext=False)
    waiter.join(30)
    assert not waiter.is_alive()
    assert results == [True]
    assert ssc.awaitTerminationOrTimeout(0) is True
    ssc.awaitTermination()  # returns at once: it is stopped


# --------------------------------------------------------------------------- making streams


def test_remember_needs_a_positive_duration(sc, make_ssc):
    ssc = make_ssc()
    for bad in (0, -1, "5"):
        with pytest.raises(ValueError, match="remember duration must be a positive number"):
            ssc.remember(bad)


def test_queue_stream_of_lists_gives_one_list_per_batch_then_empty_batches(sc, make_ssc):
    ssc = make_ssc()
    out: list = []
    collect(ssc.queueStream([[1, 2], [], [3]]), out)
    ssc.start()
    advance_batches(ssc, 5)
    assert out == [(1000, [1, 2]), (2000, []), (3000, [3]), (4000, []), (5000, [])]


def test_queue_stream_of_rdds(sc, make_ssc):
    ssc = make_ssc()
    out: list = []
    collect(ssc.queueStream([sc.parallelize(range(3)), sc.parallelize(["x"])]), out)
    ssc.start()
    advance_batches(ssc, 3)
    assert out == [(1000, [0, 1, 2]), (2000, ["x"]), (3000, [])]


def test_queue_stream_not_one_at_a_time_puts_everything_in_the_first_batch(sc, make_ssc):
    ssc = make_ssc()
    out: list = []
    collect(ssc.queueStream([[1, 2], sc.parallelize([3]), (4, 5)], oneAtATime=False), out)
    ssc.start()
    advance_batches(ssc, 2)
    assert out == [(1000, [1, 2, 3, 4, 5]), (2000, [])]


@pytest.mark.parametrize("kind", ["list", "rdd"])
def test_queue_stream_default_fills_the_batches_once_the_queue_is_empty(sc, make_ssc, kind):
    ssc = make_ssc()
    out: list = []
    default = [0, 0] if kind == "list" else sc.parallelize([0, 0])
    collect(ssc.queueStream([[1]], default=default), out)
    ssc.start()
    advance_batches(ssc, 3)
    assert out == [(1000, [1]), (2000, [0, 0]), (3000, [0, 0])]


def test_queue_stream_rejects_what_is_not_rdds_or_lists(sc, make_ssc):
    ssc = make_ssc()
    with pytest.raises(TypeError, match="list of RDDs or lists, got str"):
        ssc.queueStream("abc")
    with pytest.raises(TypeError, match="items must be RDDs or lists, got int"):
        ssc.queueStream([[1], 2])
    with pytest.raises(TypeError, match="default must be an RDD or a list"):
        ssc.queueStream([[1]], default=7)


def test_the_queue_is_taken_when_the_stream_is_made(sc, make_ssc):
    ssc = make_ssc()
    batches = [[1]]
    out: list = []
    collect(ssc.queueStream(batches), out)
    batches.append([2])  # later changes to the caller's list are not seen
    batches[0].append(9)  # nor to the lists in it: they were parallelized, as in PySpark
    ssc.start()
    advance_batches(ssc, 2)
    assert out == [(1000, [1]), (2000, [])]


def test_queued_lists_keep_their_record_counts(sc, make_ssc):
    ssc = make_ssc()
    infos: list = []
    ssc.queueStream([[1, 2, 3], sc.parallelize([4])]).foreachRDD(lambda rdd: None)
    from ember.streaming import StreamingListener

    class Seen(StreamingListener):
        def onBatchCompleted(self, batchCompleted):
            infos.append(batchCompleted.batchInfo().numRecords())

    ssc.addStreamingListener(Seen())
    ssc.start()
    advance_batches(ssc, 2)
    assert infos[0] == 3


def test_stream_by_plugin_name(sc, make_ssc):
    ssc = make_ssc()
    out: list = []
    collect(ssc.stream("queue", rdds=[[1], [2, 3]]), out)
    ssc.start()
    advance_batches(ssc, 2)
    assert out == [(1000, [1]), (2000, [2, 3])]


def test_stream_of_an_unknown_plugin_names_the_entry_point_group(sc, make_ssc):
    ssc = make_ssc()
    with pytest.raises(PluginNotFoundError, match=r"'nonexistent'.*'ember\.sources'") as info:
        ssc.stream("nonexistent")
    assert "queue" in info.value.installed


def test_context_union_merges_the_batches_of_all_streams(sc, make_ssc):
    ssc = make_ssc()
    a = ssc.queueStream([[1], [2]])
    b = ssc.queueStream([[10], []])
    c = ssc.queueStream([[100, 200], [300]])
    out: list = []
    collect(ssc.union(a, b, c), out)
    ssc.start()
    advance_batches(ssc, 2)
    assert [(t, sorted(xs)) for t, xs in out] == [(1000, [1, 10, 100, 200]), (2000, [2, 300])]


def test_context_union_checks_its_arguments(sc, make_ssc):
    ssc = make_ssc()
    with pytest.raises(ValueError, match="at least one DStream"):
        ssc.union()
    with pytest.raises(TypeError, match="union expects DStreams, got list"):
        ssc.union(ssc.queueStream([[1]]), [1])


def test_context_transform_gets_the_rdds_of_all_streams_in_order(sc, make_ssc):
    ssc = make_ssc()
    keys = ssc.queueStream([[("a", 1), ("b", 2)], [("c", 3)]])
    names = ssc.queueStream([[("a", "A")], [("c", "C"), ("d", "D")]])
    out: list = []
    joined = ssc.transform([keys, names], lambda rdds: rdds[0].join(rdds[1]))
    collect(joined, out)
    ssc.start()
    advance_batches(ssc, 2)
    assert out == [(1000, [("a", (1, "A"))]), (2000, [("c", (3, "C"))])]
    with pytest.raises(TypeError, match="transform expects a function"):
        ssc.transform([keys], "not callable")
    with pytest.raises(ValueError, match="at least one DStream"):
        ssc.transform([], lambda rdds: rdds[0])


def test_add_streaming_listener_wants_a_streaming_listener(sc, make_ssc):
    ssc = make_ssc()
    with pytest.raises(TypeError, match="StreamingListener subclass instance, got object"):
        ssc.addStreamingListener(object())
    ssc.addStreamingListener(StreamingListener())  # the no-op base is fine


@pytest.mark.parametrize("graceful", [False, True])
def test_stop_from_inside_a_job_lets_that_batch_complete_and_reach_listeners(
        sc, make_ssc, graceful):
    clock = ManualClock()
    ssc = StreamingContext(sc, 1.0, clock=clock)
    completed: list = []

    class Completed(StreamingListener):
        def onBatchCompleted(self, batchCompleted):
            completed.append(batchCompleted.batchInfo().batchTime().milliseconds())

    def output(time, rdd):
        if rdd.collect() == [2]:
            ssc.stop(stopSparkContext=False, stopGraceFully=graceful)

    ssc.queueStream([[1], [2], [3]]).foreachRDD(output)
    ssc.addStreamingListener(Completed())
    ssc.start()
    clock.advance(2.0)
    assert ssc.awaitTerminationOrTimeout(30) is True
    assert completed[:2] == [1000, 2000]
    assert ssc.getState() is StreamingContextState.STOPPED
    assert sc.parallelize([1, 2]).count() == 2  # stopSparkContext=False kept the Context
