"""The streaming hooks fire from a running StreamingContext, with the documented arguments.

There is one ``test_hook_<hook name>`` per streaming hook (tests/docs/test_hooks.py checks
that). The batch and lifecycle hooks are fired by a real StreamingContext driven by a
:class:`~ember.testing.ManualClock`: with a manual clock no time passes while a batch runs,
so every time in the events is exact.

The receiver hooks fire from a running context fed by a receiver that stores nothing
(``ssc.receiverStream``); the test reports an error through the receiver's own
``reportError``.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ember import Context, hookimpl, hookspecs
from ember.events import BatchInfo, OutputOperationInfo, ReceiverInfo
from ember.receivers import Receiver
from ember.streaming import StreamingContext, StreamingContextState, StreamingListener
from ember.testing import ManualClock, advance_batches

START_S = 1_700_000_000.0  # the manual clock's start, in seconds
T1 = 1_700_000_001_000  # the first batch time (ms) with a 1 s batch interval
T2 = T1 + 1000
BATCHES = [[1, 2, 3], [4, 5]]  # batch 2 holds 5, which makes output operation 1 fail


class Recorder:
    """A hook plugin recording every streaming event, in order, with a state snapshot."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.states: list[StreamingContextState] = []
        self._lock = threading.Lock()

    def _add(self, name: str, value: Any) -> None:
        with self._lock:
            self.events.append((name, value))

    def of(self, name: str) -> list[Any]:
        """The arguments of every call of hook ``ember_<name>``, in order."""
        return [value for event, value in self.events if event == name]

    @hookimpl
    def ember_streaming_started(self, streaming_context):
        self.states.append(streaming_context.getState())
        self._add("streaming_started", streaming_context)

    @hookimpl
    def ember_streaming_stopped(self, streaming_context):
        self.states.append(streaming_context.getState())
        self._add("streaming_stopped", streaming_context)

    @hookimpl
    def ember_batch_submitted(self, batch):
        self._add("batch_submitted", batch)

    @hookimpl
    def ember_batch_started(self, batch):
        self._add("batch_started", batch)

    @hookimpl
    def ember_batch_completed(self, batch):
        self._add("batch_completed", batch)

    @hookimpl
    def ember_output_operation_started(self, op):
        self._add("output_operation_started", op)

    @hookimpl
    def ember_output_operation_completed(self, op):
        self._add("output_operation_completed", op)

    @hookimpl
    def ember_receiver_started(self, receiver):
        self._add("receiver_started", receiver)

    @hookimpl
    def ember_receiver_error(self, receiver):
        self._add("receiver_error", receiver)

    @hookimpl
    def ember_receiver_stopped(self, receiver):
        self._add("receiver_stopped", receiver)


def fail_on_five(x: int) -> int:
    if x == 5:
        raise ValueError("five is not allowed")
    return x


@pytest.fixture
def sc() -> Iterator[Context]:
    context = Context("inline", "streaming-hooks")
    yield context
    context.stop()


@pytest.fixture
def recorder(sc) -> Recorder:
    recorder = Recorder()
    sc._hooks.register(recorder)
    return recorder


@pytest.fixture
def run(sc, recorder) -> StreamingContext:
    """Two batches of a stream with two output operations (the second fails in batch 2),
    run to their end, then a stop: the StreamingContext, stopped."""
    ssc = StreamingContext(sc, 1.0, clock=ManualClock(START_S))
    numbers = ssc.queueStream(BATCHES)
    numbers.foreachRDD(lambda rdd: rdd.collect())  # output operation 0
    numbers.map(fail_on_five).foreachRDD(lambda rdd: rdd.count())  # output operation 1
    ssc.start()
    try:
        advance_batches(ssc, 2)
    finally:
        ssc.stop(stopSparkContext=False)
    return ssc


# ---------------------------------------------------------------------- lifecycle


def test_hook_ember_streaming_started(run, recorder):
    (ssc,) = recorder.of("streaming_started")
    assert ssc is run
    assert ssc.startTime == T1
    assert recorder.states[0] is StreamingContextState.ACTIVE
    assert recorder.events[0][0] == "streaming_started", "it comes before any batch event"


def test_hook_ember_streaming_stopped(run, recorder):
    (ssc,) = recorder.of("streaming_stopped")
    assert ssc is run
    assert recorder.states[-1] is StreamingContextState.STOPPED
    assert recorder.events[-1][0] == "streaming_stopped", "it comes after the last batch"


def test_hook_ember_streaming_stopped_is_not_fired_for_a_context_never_started(sc, recorder):
    ssc = StreamingContext(sc, 1.0, clock=ManualClock(START_S))
    ssc.queueStream(BATCHES).foreachRDD(lambda rdd: None)
    ssc.stop(stopSparkContext=False)
    assert recorder.events == []


# ---------------------------------------------------------------------- batches


def test_hook_ember_batch_submitted(run, recorder):
    submitted: list[BatchInfo] = recorder.of("batch_submitted")
    assert [b.batch_time for b in submitted] == [T1, T2]
    for batch, records in zip(submitted, BATCHES, strict=True):
        assert batch.submission_time == batch.batch_time  # the manual clock stood still
        assert batch.processing_start_time is None and batch.processing_end_time is None
        assert batch.schedulingDelay() is None and batch.totalDelay() is None
        assert batch.numRecords() == len(records)
        assert sorted(batch.output_operation_infos) == [0, 1]
        assert all(op.start_time is None for op in batch.output_operation_infos.values())


def test_hook_ember_batch_started(run, recorder):
    started: list[BatchInfo] = recorder.of("batch_started")
    assert [b.batch_time for b in started] == [T1, T2]
    for batch in started:
        assert batch.processing_start_time == batch.batch_time
        assert batch.processing_end_time is None
        assert batch.schedulingDelay() == 0
    names = [name for name, _ in recorder.events]
    for t in (T1, T2):
        order = [name for name, value in recorder.events
                 if getattr(value, "batch_time", None) == t]
        assert order.index("batch_submitted") < order.index("batch_started") < order.index(
            "output_operation_started")
    assert names.count("batch_started") == 2


def test_hook_ember_batch_completed(run, recorder):
    first, second = recorder.of("batch_completed")
    assert (first.batch_time, second.batch_time) == (T1, T2)
    for batch in (first, second):
        assert batch.processing_end_time == batch.batch_time
        assert (batch.schedulingDelay(), batch.processingDelay(), batch.totalDelay()) == (0, 0, 0)
        assert all(op.end_time is not None for op in batch.output_operation_infos.values())
    assert not first.failed
    assert second.failed
    assert second.output_operation_infos[0].failure_reason is None
    assert "five is not allowed" in second.output_operation_infos[1].failure_reason
    assert first.numRecords() == 3 and second.numRecords() == 2


# ---------------------------------------------------------------------- output operations


def test_hook_ember_output_operation_started(run, recorder):
    started: list[OutputOperationInfo] = recorder.of("output_operation_started")
    assert [(op.batch_time, op.id) for op in started] == [(T1, 0), (T1, 1), (T2, 0), (T2, 1)]
    for op in started:
        assert op.name == "foreachRDD"
        assert "test_hooks_streaming.py" in op.description  # where the operation was defined
        assert op.start_time == op.batch_time and op.end_time is None
        assert op.failure_reason is None


def test_hook_ember_output_operation_completed(run, recorder):
    done: list[OutputOperationInfo] = recorder.of("output_operation_completed")
    assert [(op.batch_time, op.id) for op in done] == [(T1, 0), (T1, 1), (T2, 0), (T2, 1)]
    for op in done:
        assert op.end_time == op.batch_time and op.duration() == 0
    failed = [op for op in done if op.failure_reason]
    assert [(op.batch_time, op.id) for op in failed] == [(T2, 1)]
    assert "ValueError: five is not allowed" in failed[0].failureReason()
    assert "Traceback" in failed[0].failureReason()
    events = [(name, getattr(value, "batch_time", None), getattr(value, "id", None))
              for name, value in recorder.events if name.startswith("output_operation")]
    assert events[:4] == [
        ("output_operation_started", T1, 0), ("output_operation_completed", T1, 0),
        ("output_operation_started", T1, 1), ("output_operation_completed", T1, 1),
    ], "one job at a time, in definition order (ember.streaming.concurrentJobs=1)"


# ---------------------------------------------------------------------- receivers


class IdleReceiver(Receiver):
    """A receiver that stores nothing: it only goes through its life, which the hooks report."""

    def onStart(self):
        pass

    def onStop(self):
        pass

    def name(self):
        return "IdleReceiver"


class ReceiverListener(StreamingListener):
    def __init__(self) -> None:
        self.calls: list[tuple[str, ReceiverInfo]] = []

    def onReceiverStarted(self, receiverStarted):
        self.calls.append(("started", receiverStarted.receiverInfo()))

    def onReceiverError(self, receiverError):
        self.calls.append(("error", receiverError.receiverInfo()))

    def onReceiverStopped(self, receiverStopped):
        self.calls.append(("stopped", receiverStopped.receiverInfo()))


@pytest.fixture
def receiving(sc, recorder):
    """A running StreamingContext fed by an :class:`IdleReceiver` (and a listener on it),
    stopped after the test: (ssc, stream, receiver, listener)."""
    ssc = StreamingContext(sc, 1.0, clock=ManualClock(START_S))
    listener = ReceiverListener()
    ssc.addStreamingListener(listener)
    receiver = IdleReceiver()
    stream = ssc.receiverStream(receiver)
    stream.foreachRDD(lambda rdd: None)
    ssc.start()
    try:
        yield ssc, stream, receiver, listener
    finally:
        ssc.stop(stopSparkContext=False)


@pytest.mark.parametrize("short", ["started", "error", "stopped"])
def test_receiver_hooks_are_specified_with_one_receiver_argument(short):
    spec = getattr(hookspecs, f"ember_receiver_{short}")
    assert hasattr(spec, "ember_spec")
    assert list(inspect.signature(spec).parameters) == ["receiver"]


def test_hook_ember_receiver_started(receiving, recorder):
    _ssc, stream, receiver, listener = receiving
    (info,) = recorder.of("receiver_started")
    assert (info.stream_id, info.name, info.active) == (stream.id, "IdleReceiver", True)
    assert info.last_error_time == -1 and info.lastErrorMessage() == ""
    names = [name for name, _ in recorder.events]
    assert names.index("receiver_started") < names.index("streaming_started"), (
        "receivers start before the context reports it started"
    )
    assert receiver.isStarted()
    assert listener.calls == [("started", info)]


def test_hook_ember_receiver_error(receiving, recorder):
    _ssc, stream, receiver, listener = receiving
    try:
        raise ConnectionRefusedError("the server went away")
    except ConnectionRefusedError as exc:
        receiver.reportError("lost the connection", exc)
    (info,) = recorder.of("receiver_error")
    assert (info.stream_id, info.active) == (stream.id, True)
    assert info.lastErrorMessage() == "lost the connection"
    assert "ConnectionRefusedError: the server went away" in info.lastError()
    assert info.lastErrorTime() == round(START_S * 1000)  # the streaming clock's time
    assert listener.calls[-1] == ("error", info)
    assert not receiver.isStopped(), "reporting an error does not stop the receiver"


def test_hook_ember_receiver_stopped(receiving, recorder):
    ssc, stream, receiver, listener = receiving
    assert recorder.of("receiver_stopped") == []
    ssc.stop(stopSparkContext=False)
    (info,) = recorder.of("receiver_stopped")
    assert (info.stream_id, info.name, info.active) == (stream.id, "IdleReceiver", False)
    names = [name for name, _ in recorder.events]
    assert names.index("receiver_stopped") < names.index("streaming_stopped")
    assert receiver.isStopped()
    assert listener.calls[-1] == ("stopped", info)
