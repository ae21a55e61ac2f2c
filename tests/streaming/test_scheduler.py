"""The streaming scheduler: batch times, jobs per batch, concurrency, queueing, BatchInfo,
errors, stopping and leaks, on both executors (``ember_master``).

Time is a ManualClock the tests move; threads meet on Events and Barriers (with timeouts, so
a broken scheduler fails a test instead of hanging it). One short test uses the real clock.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time

import pytest
from ember import Conf, Context
from ember.errors import RemoteTraceback
from ember.events import BatchInfo, OutputOperationInfo
from ember.streaming import StreamingContext, StreamingListener
from ember.testing import ManualClock, advance_batches

WAIT = 30  # seconds: an upper bound for things that happen at once unless broken


def batch_ms(t: datetime.datetime) -> int:
    return round(t.timestamp() * 1000)


class Recorder(StreamingListener):
    """Keeps every BatchInfo and OutputOperationInfo; can wait for completed batches."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.submitted: list[BatchInfo] = []
        self.started: list[BatchInfo] = []
        self.completed: list[BatchInfo] = []
        self.ops_started: list[OutputOperationInfo] = []
        self.ops_completed: list[OutputOperationInfo] = []

    def _add(self, where: list, item) -> None:
        with self.cond:
            where.append(item)
            self.cond.notify_all()

    def onBatchSubmitted(self, batchSubmitted):
        self._add(self.submitted, batchSubmitted.batchInfo())

    def onBatchStarted(self, batchStarted):
        self._add(self.started, batchStarted.batchInfo())

    def onBatchCompleted(self, batchCompleted):
        self._add(self.completed, batchCompleted.batchInfo())

    def onOutputOperationStarted(self, outputOperationStarted):
        self._add(self.ops_started, outputOperationStarted.outputOperationInfo())

    def onOutputOperationCompleted(self, outputOperationCompleted):
        self._add(self.ops_completed, outputOperationCompleted.outputOperationInfo())

    def wait(self, what: str, n: int, timeout: float = WAIT) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: len(getattr(self, what)) >= n, timeout):
                raise AssertionError(f"only {len(getattr(self, what))} {what}, expected {n}")

    def completed_by_time(self) -> dict[int, BatchInfo]:
        with self.cond:
            return {b.batchTime().milliseconds(): b for b in self.completed}


@pytest.fixture
def sc(ember_context: Context, ember_master: str) -> Context:
    return ember_context


@pytest.fixture
def contexts():
    """StreamingContexts to stop (without their Context) when the test ends, however it ends."""
    made: list[StreamingContext] = []
    yield made
    for ssc in made:
        ssc.stop(stopSparkContext=False)


def manual(sc: Context, contexts: list, interval: float = 1.0,
           clock: ManualClock | None = None) -> StreamingContext:
    ssc = StreamingContext(sc, interval, clock=clock or ManualClock())
    contexts.append(ssc)
    return ssc


@pytest.fixture
def own_context(ember_master: str):
    """Make a Context with a given Conf (stopped after the test)."""
    made: list[Context] = []

    def make(**settings) -> Context:
        conf = Conf()
        for key, value in settings.items():
            conf.set(key.replace("_", "."), value)
        ctx = Context(ember_master, "scheduler-test", conf)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.stop()


# --------------------------------------------------------------------------- batch times


def test_batch_times_are_multiples_of_the_interval(sc, contexts):
    clock = ManualClock(start=1000.3)  # not on a batch boundary
    ssc = manual(sc, contexts, 0.5, clock)
    rec = Recorder()
    ssc.addStreamingListener(rec)
    times: list[datetime.datetime] = []
    ssc.queueStream([[1]] * 4).foreachRDD(lambda t, rdd: times.append(t))
    ssc.start()
    assert ssc.startTime == 1_000_500
    advance_batches(ssc, 4)
    assert all(isinstance(t, datetime.datetime) for t in times)
    expected = [1_000_500, 1_001_000, 1_001_500, 1_002_000]
    assert [batch_ms(t) for t in times] == expected
    assert times[0] == datetime.datetime.fromtimestamp(1000.5)
    assert [b.batchTime().milliseconds() for b in rec.completed] == expected
    assert all(ms % 500 == 0 for ms in expected)


def test_one_job_per_output_operation_per_batch_in_definition_order(sc, contexts):
    ssc = manual(sc, contexts)
    rec = Recorder()
    ssc.addStreamingListener(rec)
    runs: list[tuple[str, int]] = []
    stream = ssc.queueStream([[1, 2], [3]])
    for name in ("first", "second", "third"):
        stream.foreachRDD(lambda t, rdd, name=name: runs.append((name, batch_ms(t))))
    ssc.start()
    advance_batches(ssc, 3)
    assert runs == [(name, t) for t in (1000, 2000, 3000) for name in ("first", "second", "third")]
    for info in rec.completed:
        ops = info.outputOperationInfos()
        assert sorted(ops) == [0, 1, 2]
        assert [ops[i].outputOperationId() for i in range(3)] == [0, 1, 2]
        assert all(op.name == "foreachRDD" for op in ops.values())
        assert all("test_scheduler.py" in op.description for op in ops.values())
    assert [(o.batch_time, o.id) for o in rec.ops_started] == [
        (t, i) for t in (1000, 2000, 3000) for i in range(3)
    ]


@pytest.mark.parametrize("concurrent_jobs, overlap", [(2, True), (1, False)])
def test_concurrent_jobs_lets_two_outputs_of_a_batch_run_at_once(
        own_context, contexts, concurrent_jobs, overlap):
    sc = own_context(ember_streaming_concurrentJobs=str(concurrent_jobs))
    ssc = manual(sc, contexts)
    # With one job at a time the first output waits at the barrier alone and times out.
    barrier = threading.Barrier(2, timeout=10 if overlap else 0.5)
    met: list[str] = []

    def meet(name: str):
        def job(rdd):
            rdd.count()
            barrier.wait()
            met.append(name)
        return job

    stream = ssc.queueStream([[1, 2, 3]])
    stream.foreachRDD(meet("a"))
    stream.foreachRDD(meet("b"))
    ssc.start()
    advance_batches(ssc, 1)
    if overlap:
        assert sorted(met) == ["a", "b"]
        assert ssc.awaitTerminationOrTimeout(0) is False
    else:
        assert met == []
        with pytest.raises(threading.BrokenBarrierError):
            ssc.awaitTerminationOrTimeout(0)


def test_a_slow_batch_makes_later_ones_wait_in_the_queue_never_skipped(sc, contexts):
    clock = ManualClock()
    ssc = manual(sc, contexts, 1.0, clock)
    rec = Recorder()
    ssc.addStreamingListener(rec)
    entered, release = threading.Event(), threading.Event()
    ran: list[tuple[int, list]] = []

    def slow_first(t, rdd):
        ran.append((batch_ms(t), rdd.collect()))
        if batch_ms(t) == 1000:
            entered.set()
            assert release.wait(WAIT)

    ssc.queueStream([[1], [2], [3]]).foreachRDD(slow_first)
    ssc.start()
    clock.advance(3)  # three batch intervals at once: batches 1000, 2000 and 3000 are due
    assert entered.wait(WAIT)
    rec.wait("submitted", 3)  # the later two are queued behind the blocked one...
    assert ran == [(1000, [1])]
    assert len(rec.completed) == 0
    clock.advance(0.5)  # ...while time passes
    release.set()
    rec.wait("completed", 3)
    assert ran == [(1000, [1]), (2000, [2]), (3000, [3])]
    infos = rec.completed_by_time()
    assert sorted(infos) == [1000, 2000, 3000]
    assert [b.batchTime().milliseconds() for b in rec.completed] == [1000, 2000, 3000]
    first = infos[1000]
    assert first.submissionTime() == 3000
    assert first.schedulingDelay() == 0
    assert first.processingDelay() == 500
    assert first.totalDelay() == 2500
    for t in (2000, 3000):
        later = infos[t]
        assert later.submissionTime() == 3000
        assert later.processingStartTime() == 3500
        assert later.schedulingDelay() == 500 > 0
        assert later.totalDelay() == 3500 - t


# --------------------------------------------------------------------------- BatchInfo


def test_batch_info_reports_times_records_delays_and_output_operations(sc, contexts):
    clock = ManualClock()
    ssc = manual(sc, contexts, 1.0, clock)
    rec = Recorder()
    ssc.addStreamingListener(rec)
    stream = ssc.queueStream([[1, 2, 3], [], list(range(10))])
    # each output operation "takes" a known time on the manual clock
    stream.foreachRDD(lambda rdd: (rdd.count(), clock.advance(0.1)))
    stream.foreachRDD(lambda rdd: (rdd.collect(), clock.advance(0.2)))
    ssc.start()
    advance_batches(ssc, 3)
    assert [b.batchTime().milliseconds() for b in rec.completed] == [1000, 2000, 3000]
    for info, records in zip(rec.completed, (3, 0, 10), strict=True):
        t = info.batchTime().milliseconds()
        assert info.numRecords() == records
        assert [i.numRecords() for i in info.streamIdToInputInfo().values()] == [records]
        assert info.submissionTime() == t
        assert info.processingStartTime() == t
        assert info.processingEndTime() == t + 300
        assert info.schedulingDelay() == 0
        assert info.processingDelay() == 300
        assert info.totalDelay() == 300
        assert not info.failed
        ops = info.outputOperationInfos()
        assert (ops[0].startTime(), ops[0].endTime(), ops[0].duration()) == (t, t + 100, 100)
        assert (ops[1].startTime(), ops[1].endTime(), ops[1].duration()) == (t + 100, t + 300, 200)
        assert ops[0].failureReason() is None and ops[1].failureReason() is None
        assert ops[0].batchTime().milliseconds() == t
    # submitted/started events carry the facts known then
    assert rec.submitted[0].processingStartTime() is None
    assert rec.submitted[0].schedulingDelay() is None
    assert rec.submitted[0].totalDelay() is None
    assert rec.started[0].processingStartTime() == 1000
    assert rec.started[0].processingEndTime() is None
    assert rec.ops_started[0].endTime() is None and rec.ops_started[0].duration() is None


def test_records_of_rdd_batches_are_unknown_and_reported_as_zero(sc, contexts):
    ssc = manual(sc, contexts)
    rec = Recorder()
    ssc.addStreamingListener(rec)
    ssc.queueStream([sc.parallelize([1, 2])], default=[7, 7, 7]).foreachRDD(lambda r: None)
    ssc.start()
    advance_batches(ssc, 2)
    assert [b.numRecords() for b in rec.completed] == [0, 3]


def test_not_one_at_a_time_counts_every_queued_list(sc, contexts):
    ssc = manual(sc, contexts)
    rec = Recorder()
    ssc.addStreamingListener(rec)
    ssc.queueStream([[1, 2], [3], [4, 5, 6]], oneAtATime=False).foreachRDD(lambda r: None)
    ssc.start()
    advance_batches(ssc, 2)
    assert [b.numRecords() for b in rec.completed] == [6, 0]


# --------------------------------------------------------------------------- errors


class BadRecord(ValueError):
    pass


def test_a_failing_output_operation_reaches_listeners_logs_and_await_termination(
        sc, contexts, caplog):
    caplog.set_level(logging.ERROR, logger="ember.streaming")
    ssc = manual(sc, contexts)
    rec = Recorder()
    ssc.addStreamingListener(rec)
    raised: list[BaseException] = []
    ran: list[int] = []

    def fail_on_second_batch(t, rdd):
        ran.append(batch_ms(t))
        if batch_ms(t) == 2000:
            exc = BadRecord(f"bad record {rdd.collect()}")
            raised.append(exc)
            raise exc

    ssc.queueStream([[1], [42], [3]]).foreachRDD(fail_on_second_batch)
    ssc.start()
    advance_batches(ssc, 1)
    assert ssc.awaitTerminationOrTimeout(0) is False  # nothing failed yet
    advance_batches(ssc, 2)
    assert ran == [1000, 2000, 3000]  # later batches still run

    failed = [op for op in rec.ops_completed if op.failureReason()]
    assert [op.batchTime().milliseconds() for op in failed] == [2000]
    reason = failed[0].failureReason()
    assert "Traceback (most recent call last)" in reason
    assert "BadRecord: bad record [42]" in reason
    assert "fail_on_second_batch" in reason
    infos = rec.completed_by_time()
    assert infos[2000].failed and not infos[1000].failed and not infos[3000].failed
    assert infos[2000].outputOperationInfos()[0].failureReason() == reason

    logged = [r for r in caplog.records if r.name == "ember.streaming" and r.levelno >= logging.ERROR]
    assert len(logged) == 1
    assert "batch 2000 ms failed" in logged[0].getMessage()
    assert "BadRecord: bad record [42]" in logged[0].getMessage()

    with pytest.raises(BadRecord, match=r"^bad record \[42\]$") as info:
        ssc.awaitTerminationOrTimeout(WAIT)
    assert info.value is raised[0]
    with pytest.raises(BadRecord, match=r"bad record \[42\]"):
        ssc.awaitTermination(WAIT)


def test_an_error_in_a_task_arrives_with_its_remote_traceback(sc, contexts):
    ssc = manual(sc, contexts)
    totals: list[int] = []

    def explode_on_three(x):
        if x == 3:
            raise ZeroDivisionError(f"cannot take record {x}")
        return x * 2

    ssc.queueStream([[1, 2], [3, 4], [5]]).map(explode_on_three).foreachRDD(
        lambda rdd: totals.append(sum(rdd.collect()))
    )
    ssc.start()
    advance_batches(ssc, 3)
    assert totals == [6, 10]  # the failing batch has no total; the next one ran
    with pytest.raises(ZeroDivisionError) as info:
        ssc.awaitTermination(WAIT)
    assert str(info.value) == "cannot take record 3"  # the user's own message (plus a note)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "explode_on_three" in cause.text
    assert "ZeroDivisionError: cannot take record 3" in cause.text


def test_an_error_while_generating_a_batch_is_reported_and_later_batches_run(
        sc, contexts, caplog):
    caplog.set_level(logging.ERROR, logger="ember.streaming")
    ssc = manual(sc, contexts)
    rec = Recorder()
    ssc.addStreamingListener(rec)
    out: list = []

    def picky(t, rdd):
        if batch_ms(t) == 2000:
            raise KeyError("no such batch")
        return rdd

    ssc.queueStream([[1], [2], [3]]).transform(picky).foreachRDD(
        lambda t, rdd: out.append((batch_ms(t), rdd.collect())))
    ssc.start()
    advance_batches(ssc, 3)
    assert out == [(1000, [1]), (3000, [3])]
    assert [b.batchTime().milliseconds() for b in rec.completed] == [1000, 2000, 3000]
    assert rec.completed_by_time()[2000].outputOperationInfos() == {}
    assert any("generating the jobs of batch 2000 ms failed" in r.getMessage()
               for r in caplog.records)
    with pytest.raises(KeyError, match="no such batch"):
        ssc.awaitTerminationOrTimeout(WAIT)


# --------------------------------------------------------------------------- stopping


def streaming_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.name.startswith(("ember-job-generator", "ember-streaming-job"))]


def test_a_stopped_streaming_context_leaves_no_thread_or_process(ember_no_leaks, sc, contexts):
    ssc = manual(sc, contexts)
    out: list = []
    ssc.queueStream([[1, 2], [3]]).map(lambda x: x + 1).foreachRDD(
        lambda rdd: out.append(rdd.collect()))
    ssc.start()
    assert streaming_threads()
    advance_batches(ssc, 2)
    ssc.stop(stopSparkContext=False)
    assert out == [[2, 3], [4]]
    assert streaming_threads() == []  # stop() joined them; ember_no_leaks checks the rest


def test_a_stopped_context_from_a_master_string_leaves_nothing(ember_no_leaks, ember_master):
    ssc = StreamingContext(ember_master, 0.5, appName="leaks", clock=ManualClock())
    try:
        ssc.queueStream([[1]]).foreachRDD(lambda rdd: rdd.count())
        ssc.start()
        advance_batches(ssc, 2)
    finally:
        ssc.stop()
    assert streaming_threads() == []


class SignallingClock(ManualClock):
    """A ManualClock that tells when the scheduler asked its waiters to wake (at stop)."""

    def __init__(self) -> None:
        super().__init__()
        self.woken = threading.Event()

    def wake(self) -> None:
        self.woken.set()
        super().wake()


def test_graceful_stop_runs_every_queued_batch_before_returning(sc, contexts):
    clock = SignallingClock()
    ssc = manual(sc, contexts, 1.0, clock)
    rec = Recorder()
    ssc.addStreamingListener(rec)
    entered, release = threading.Event(), threading.Event()
    events: list = []

    def job(t, rdd):
        events.append((batch_ms(t), rdd.collect()))
        if batch_ms(t) == 1000:
            entered.set()
            assert release.wait(WAIT)

    ssc.queueStream([["a"], ["b"], ["c"]]).foreachRDD(job)
    ssc.start()
    clock.advance(3)
    assert entered.wait(WAIT)
    rec.wait("submitted", 3)

    def stop() -> None:
        ssc.stop(stopSparkContext=False, stopGraceFully=True)
        events.append("stopped")

    stopper = threading.Thread(target=stop)
    stopper.start()
    assert clock.woken.wait(WAIT)  # stop() has begun...
    assert stopper.is_alive()  # ...and waits for the blocked batch
    release.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert events == [(1000, ["a"]), (2000, ["b"]), (3000, ["c"]), "stopped"]
    assert streaming_threads() == []


def test_stop_not_graceful_drops_queued_batches_that_have_not_started(sc, contexts):
    clock = ManualClock()
    ssc = manual(sc, contexts, 1.0, clock)
    rec = Recorder()
    ssc.addStreamingListener(rec)
    go = threading.Event()
    ran: list[int] = []

    def job(t, rdd):
        ran.append(batch_ms(t))
        if batch_ms(t) == 1000:
            assert go.wait(WAIT)
            # stopping from inside the running job: batches 2000 and 3000 are queued
            ssc.stop(stopSparkContext=False, stopGraceFully=False)
            ran.append("stop returned")

    ssc.queueStream([[1], [2], [3]]).foreachRDD(job)
    ssc.start()
    clock.advance(3)
    rec.wait("submitted", 3)
    go.set()
    assert ssc.awaitTerminationOrTimeout(WAIT) is True
    for thread in streaming_threads():
        thread.join(WAIT)
    assert streaming_threads() == []
    assert ran == [1000, "stop returned"]  # 2000 and 3000 were dropped


def test_stop_from_another_thread_waits_for_the_running_job(sc, contexts):
    clock = SignallingClock()
    ssc = manual(sc, contexts, 1.0, clock)
    entered, release = threading.Event(), threading.Event()
    done: list[str] = []

    def job(rdd):
        entered.set()
        assert release.wait(WAIT)
        done.append("job")

    ssc.queueStream([[1]]).foreachRDD(job)
    ssc.start()
    clock.advance(1)
    assert entered.wait(WAIT)
    stopper = threading.Thread(target=lambda: (ssc.stop(stopSparkContext=False),
                                               done.append("stopped")))
    stopper.start()
    assert clock.woken.wait(WAIT)
    assert stopper.is_alive()
    release.set()
    stopper.join(WAIT)
    assert done == ["job", "stopped"]


# --------------------------------------------------------------------------- real clock


def test_the_system_clock_runs_consecutive_sub_second_batches(sc, contexts):
    ssc = StreamingContext(sc, 0.1)  # the system clock
    contexts.append(ssc)
    times: list[int] = []
    ssc.queueStream([], default=[1]).foreachRDD(lambda t, rdd: times.append(batch_ms(t)))
    ssc.start()
    deadline = time.monotonic() + WAIT
    while len(times) < 4 and time.monotonic() < deadline:
        assert ssc.awaitTerminationOrTimeout(0.1) is False
    ssc.stop(stopSparkContext=False)
    assert len(times) >= 4
    assert times[0] == ssc.startTime
    assert all(t % 100 == 0 for t in times)
    assert times == [times[0] + 100 * i for i in range(len(times))]
