"""Output operations (pprint's exact layout, foreachRDD's two forms) and StreamingListener
(call order per batch, PySpark's accessors, removal), on both executors."""

from __future__ import annotations

import datetime

import pytest
from ember import Context
from ember.streaming import StreamingContext, StreamingListener
from ember.testing import ManualClock, advance_batches

DASHES = "-------------------------------------------"


def batch_ms(t: datetime.datetime) -> int:
    return round(t.timestamp() * 1000)


def header(ms: int) -> str:
    return f"{DASHES}\nTime: {datetime.datetime.fromtimestamp(ms / 1000)}\n{DASHES}\n"


@pytest.fixture
def sc(ember_context: Context, ember_master: str) -> Context:
    return ember_context


@pytest.fixture
def make_ssc(sc):
    made: list[StreamingContext] = []

    def make(interval: float = 1.0) -> StreamingContext:
        ssc = StreamingContext(sc, interval, clock=ManualClock())
        made.append(ssc)
        return ssc

    yield make
    for ssc in made:
        ssc.stop(stopSparkContext=False)


# --------------------------------------------------------------------------- pprint


def test_pprint_prints_the_guide_layout(sc, make_ssc, capsys):
    ssc = make_ssc()
    ssc.queueStream([[("hello", 1), ("world", 2)], list(range(12)), [], list(range(10))]).pprint()
    ssc.start()
    capsys.readouterr()
    advance_batches(ssc, 4)
    out = capsys.readouterr().out
    expected = (
        header(1000) + "('hello', 1)\n('world', 2)\n\n"
        + header(2000) + "".join(f"{i}\n" for i in range(10)) + "...\n\n"  # 12 records
        + header(3000) + "\n"  # an empty batch: just the header and a blank line
        + header(4000) + "".join(f"{i}\n" for i in range(10)) + "\n"  # exactly 10: no "..."
    )
    assert out == expected
    assert header(1000).startswith(
        "-------------------------------------------\nTime: 1970-01-01 ")


@pytest.mark.parametrize("num, records, shown, more", [
    (3, [5, 6, 7, 8, 9], [5, 6, 7], True),
    (3, [5, 6, 7], [5, 6, 7], False),
    (1, ["a", "b"], ["a"], True),
    (0, ["a"], [], True),
    (0, [], [], False),
])
def test_pprint_shows_num_records_and_dots_when_there_are_more(
        sc, make_ssc, capsys, num, records, shown, more):
    ssc = make_ssc()
    ssc.queueStream([records]).pprint(num)
    ssc.start()
    advance_batches(ssc, 1)
    body = "".join(f"{r}\n" for r in shown) + ("...\n" if more else "")
    assert capsys.readouterr().out == header(1000) + body + "\n"


def test_pprint_of_sub_second_batches_shows_the_fraction(sc, make_ssc, capsys):
    ssc = make_ssc(0.1)
    ssc.queueStream([["x"]]).pprint()
    ssc.start()
    advance_batches(ssc, 1)
    out = capsys.readouterr().out
    assert out == header(100) + "x\n\n"
    assert "Time: 1970-01-01" in out and ":00.100000\n" in out


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_pprint_num_must_be_a_non_negative_integer(sc, make_ssc, bad):
    with pytest.raises(ValueError, match="pprint's num must be an integer >= 0"):
        make_ssc().queueStream([[1]]).pprint(bad)


# --------------------------------------------------------------------------- foreachRDD


def test_foreach_rdd_with_a_function_of_the_rdd(sc, make_ssc):
    ssc = make_ssc()
    got: list = []
    ssc.queueStream([[1, 2], [3]]).foreachRDD(lambda rdd: got.append(sorted(rdd.collect())))
    ssc.start()
    advance_batches(ssc, 2)
    assert got == [[1, 2], [3]]


def test_foreach_rdd_with_a_function_of_time_and_rdd(sc, make_ssc):
    ssc = make_ssc()
    got: list = []

    def save(time, rdd):
        got.append((time, rdd.map(str).collect()))

    ssc.queueStream([[1, 2], [3]]).foreachRDD(save)
    ssc.start()
    advance_batches(ssc, 2)
    assert got == [(datetime.datetime.fromtimestamp(1), ["1", "2"]),
                   (datetime.datetime.fromtimestamp(2), ["3"])]


def test_foreach_rdd_with_a_bound_method_and_a_callable_object(sc, make_ssc):
    ssc = make_ssc()

    class Sink:
        def __init__(self):
            self.batches: list = []

        def write(self, rdd):
            self.batches.append(rdd.collect())

        def __call__(self, time, rdd):
            self.batches.append((batch_ms(time), rdd.count()))

    sink = Sink()
    stream = ssc.queueStream([["a"]])
    stream.foreachRDD(sink.write)
    stream.foreachRDD(sink)
    ssc.start()
    advance_batches(ssc, 1)
    assert sink.batches == [["a"], (1000, 1)]


def test_foreach_rdd_rejects_what_cannot_take_an_rdd(sc, make_ssc):
    stream = make_ssc().queueStream([[1]])
    with pytest.raises(TypeError, match="foreachRDD expects a function, got 5"):
        stream.foreachRDD(5)
    with pytest.raises(TypeError, match="takes no argument"):
        stream.foreachRDD(lambda: None)


# --------------------------------------------------------------------------- listeners


class OrderListener(StreamingListener):
    """Records each call as ``(method, batch time in ms)`` plus a few accessor values."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.infos: dict[str, list] = {}

    def _keep(self, kind: str, info) -> None:
        self.infos.setdefault(kind, []).append(info)

    def onStreamingStarted(self, streamingStarted):
        self.calls.append(("onStreamingStarted", streamingStarted.time()))

    def onBatchSubmitted(self, batchSubmitted):
        info = batchSubmitted.batchInfo()
        self._keep("submitted", info)
        self.calls.append(("onBatchSubmitted", info.batchTime().milliseconds()))

    def onBatchStarted(self, batchStarted):
        info = batchStarted.batchInfo()
        self._keep("started", info)
        self.calls.append(("onBatchStarted", info.batchTime().milliseconds()))

    def onBatchCompleted(self, batchCompleted):
        info = batchCompleted.batchInfo()
        self._keep("completed", info)
        self.calls.append(("onBatchCompleted", info.batchTime().milliseconds()))

    def onOutputOperationStarted(self, outputOperationStarted):
        op = outputOperationStarted.outputOperationInfo()
        self._keep("op_started", op)
        self.calls.append(("onOutputOperationStarted", op.batchTime().milliseconds(),
                           op.outputOperationId()))

    def onOutputOperationCompleted(self, outputOperationCompleted):
        op = outputOperationCompleted.outputOperationInfo()
        self._keep("op_completed", op)
        self.calls.append(("onOutputOperationCompleted", op.batchTime().milliseconds(),
                           op.outputOperationId()))


def per_batch(t: int) -> list[tuple]:
    return [
        ("onBatchSubmitted", t),
        ("onBatchStarted", t),
        ("onOutputOperationStarted", t, 0),
        ("onOutputOperationCompleted", t, 0),
        ("onOutputOperationStarted", t, 1),
        ("onOutputOperationCompleted", t, 1),
        ("onBatchCompleted", t),
    ]


def test_listener_methods_are_called_in_order_for_each_batch(sc, make_ssc):
    clock = ManualClock()
    ssc = StreamingContext(sc, 1, clock=clock)
    listener = OrderListener()
    ssc.addStreamingListener(listener)
    stream = ssc.queueStream([[1, 2, 3], ["x"]])
    stream.foreachRDD(lambda rdd: (rdd.count(), clock.advance(0.25)))
    stream.pprint()
    try:
        ssc.start()
        advance_batches(ssc, 2)
    finally:
        ssc.stop(stopSparkContext=False)
    assert listener.calls == [("onStreamingStarted", 1000), *per_batch(1000), *per_batch(2000)]

    completed = listener.infos["completed"]
    assert [b.numRecords() for b in completed] == [3, 1]
    first = completed[0]
    assert first.batchTime().milliseconds() == 1000
    assert first.schedulingDelay() == 0
    assert first.processingDelay() == 250
    assert first.totalDelay() == 250
    ops = first.outputOperationInfos()
    assert ops[0].duration() == 250 and ops[1].duration() == 0
    assert ops[0].name == "foreachRDD" and ops[1].name == "pprint"
    op_done = listener.infos["op_completed"][0]
    assert op_done.duration() == 250
    assert (op_done.startTime(), op_done.endTime()) == (1000, 1250)
    assert op_done.failureReason() is None
    assert listener.infos["op_started"][0].endTime() is None
    assert listener.infos["submitted"][0].processingStartTime() is None
    assert listener.infos["started"][0].processingEndTime() is None


def test_remove_streaming_listener_stops_the_calls(sc, make_ssc):
    ssc = make_ssc()
    kept, removed = OrderListener(), OrderListener()
    ssc.addStreamingListener(kept)
    ssc.addStreamingListener(removed)
    ssc.queueStream([[1], [2]]).foreachRDD(lambda rdd: rdd.count())
    ssc.start()
    advance_batches(ssc, 1)
    ssc.removeStreamingListener(removed)
    advance_batches(ssc, 1)
    batches = [c[1] for c in kept.calls if c[0] == "onBatchCompleted"]
    assert batches == [1000, 2000]
    assert [c[1] for c in removed.calls if c[0] == "onBatchCompleted"] == [1000]
    assert all(c[1] <= 1000 for c in removed.calls)
    ssc.removeStreamingListener(removed)  # removing twice is harmless


def test_listeners_hear_nothing_after_stop(sc, make_ssc):
    ssc = make_ssc()
    listener = OrderListener()
    ssc.addStreamingListener(listener)
    ssc.queueStream([[1]]).foreachRDD(lambda rdd: rdd.count())
    ssc.start()
    advance_batches(ssc, 1)
    ssc.stop(stopSparkContext=False)
    calls = list(listener.calls)
    assert calls[-1] == ("onBatchCompleted", 1000)
    # a new streaming context on the same Context does not reach the old listener
    second = make_ssc()
    second.queueStream([[1]]).foreachRDD(lambda rdd: rdd.count())
    second.start()
    advance_batches(second, 1)
    assert listener.calls == calls
