"""Receivers: storing data, blocks, rate limits and backpressure, restart and stop, graceful
shutdown, and what listeners see.

Batches follow a ManualClock the tests move (``advance_batches``). Receivers run real
threads, so the tests meet them on Events, or poll a condition for a bounded time; only the
rate tests measure records over a short wall-clock window, with wide margins.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ember import Conf, Context
from ember.events import ReceiverInfo
from ember.receivers import Receiver
from ember.streaming import StreamingContext, StreamingListener
from ember.streaming._receiving import PIDRateEstimator
from ember.testing import ManualClock, advance_batches, wait_until

START_S = 1000.0  # the manual clock's start: batch times are 1001000, 1002000, ... ms
WAIT = 30.0  # seconds: a bound for what happens at once unless broken


def wait_event(event: threading.Event, what: str, timeout: float = WAIT) -> None:
    assert event.wait(timeout), f"timed out after {timeout:g} s waiting for {what}"


# ---------------------------------------------------------------------- receivers


class ScriptReceiver(Receiver):
    """Runs ``script(receiver, halt)`` in its own thread from ``onStart``; ``onStop`` sets
    ``halt`` and joins the thread. Counts its starts and stops; keeps what the script raised.
    """

    def __init__(self, script: Callable[[ScriptReceiver, threading.Event], None],
                 label: str = "ScriptReceiver") -> None:
        super().__init__()
        self.script = script
        self.label = label
        self.starts = 0
        self.stops = 0
        self.errors: list[BaseException] = []
        self.started = threading.Event()
        self.halt = threading.Event()
        self.thread: threading.Thread | None = None
        self.start_times: list[float] = []

    def name(self) -> str:
        return self.label

    def onStart(self) -> None:
        self.starts += 1
        self.start_times.append(time.monotonic())
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(self.halt,), daemon=True,
                                       name=f"test-receiver-{self.label}-{self.starts}")
        self.thread.start()
        self.started.set()

    def _run(self, halt: threading.Event) -> None:
        try:
            self.script(self, halt)
        except BaseException as exc:  # kept for the test to see
            self.errors.append(exc)

    def onStop(self) -> None:
        self.stops += 1
        self.halt.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()


def idle(receiver: ScriptReceiver, halt: threading.Event) -> None:
    halt.wait()


class Events(StreamingListener):
    """The receiver events listeners get, with bounded waits."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.calls: list[tuple[str, ReceiverInfo]] = []

    def _add(self, kind: str, info: ReceiverInfo) -> None:
        with self.cond:
            self.calls.append((kind, info))
            self.cond.notify_all()

    def onReceiverStarted(self, receiverStarted):
        self._add("started", receiverStarted.receiverInfo())

    def onReceiverError(self, receiverError):
        self._add("error", receiverError.receiverInfo())

    def onReceiverStopped(self, receiverStopped):
        self._add("stopped", receiverStopped.receiverInfo())

    def of(self, kind: str) -> list[ReceiverInfo]:
        with self.cond:
            return [info for k, info in self.calls if k == kind]

    def wait(self, kind: str, n: int = 1, timeout: float = WAIT) -> list[ReceiverInfo]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.of(kind)) >= n, timeout)
        assert ok, f"{len(self.of(kind))} {kind} events, expected {n}: {self.calls}"
        return self.of(kind)


class Run:
    """A Context (own configuration), a StreamingContext on a ManualClock, one stream per
    receiver with an output keeping each batch's partitions, and a listener."""

    def __init__(self, receivers: list[Receiver], master: str, conf: dict[str, Any],
                 output: bool) -> None:
        self.ctx = Context(master, "test-receivers", conf=Conf().setAll(conf.items()))
        self.clock = ManualClock(START_S)
        self.ssc = StreamingContext(self.ctx, 1.0, clock=self.clock)
        self.events = Events()
        self.ssc.addStreamingListener(self.events)
        self.receivers = receivers
        self.streams = [self.ssc.receiverStream(r) for r in receivers]
        self.lock = threading.Lock()
        self.batches: list[dict[int, list[list[Any]]]] = [{} for _ in receivers]
        if output:
            for i, stream in enumerate(self.streams):
                stream.foreachRDD(self._keeper(i))

    def _keeper(self, i: int) -> Callable[[Any, Any], None]:
        def keep(t: Any, rdd: Any) -> None:
            parts = rdd.glom().collect()
            with self.lock:
                self.batches[i][round(t.timestamp() * 1000)] = parts
        return keep

    def start(self) -> Run:
        self.ssc.start()
        return self

    def advance(self, n: int = 1) -> None:
        advance_batches(self.ssc, n)

    def partitions(self, i: int = 0) -> list[list[Any]]:
        """Every partition of every batch so far, in order."""
        with self.lock:
            return [p for t in sorted(self.batches[i]) for p in self.batches[i][t]]

    def records(self, i: int = 0) -> list[Any]:
        return [r for p in self.partitions(i) for r in p]

    @property
    def tracker(self) -> Any:
        return self.ssc._scheduler.tracker

    def supervisor(self, i: int = 0) -> Any:
        return self.streams[i].supervisor

    def in_blocks(self, i: int = 0) -> int:
        """Records of stream ``i`` in stored blocks not yet given to a batch."""
        return sum(b.num_records for b in self.tracker.unallocated(self.streams[i].id))

    def wait_in_blocks(self, n: int, i: int = 0) -> None:
        wait_until(lambda: self.in_blocks(i) >= n, f"{n} records in stored blocks")

    def stop(self, graceful: bool = False) -> float:
        start = time.monotonic()
        self.ssc.stop(stopSparkContext=False, stopGraceFully=graceful)
        return time.monotonic() - start

    def close(self) -> None:
        try:
            self.ssc.stop(stopSparkContext=False)
        finally:
            self.ctx.stop()
        for receiver in self.receivers:
            errors = getattr(receiver, "errors", [])
            if errors:
                raise errors[0]


@pytest.fixture
def run() -> Iterator[Callable[..., Run]]:
    """``run(*receivers, master="inline", conf={}, output=True)`` → a :class:`Run`, not yet
    started; everything is stopped after the test (re-raising what a receiver's script raised)."""
    made: list[Run] = []

    def make(*receivers: Receiver, master: str = "inline", conf: dict[str, Any] | None = None,
             output: bool = True) -> Run:
        made.append(Run(list(receivers), master, dict(conf or {}), output))
        return made[-1]

    yield make
    for r in made:
        r.close()


# ---------------------------------------------------------------------- storing


def test_store_storeMany_and_storeBytes_deliver_their_data_exactly(run, ember_master):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        for i in range(5):
            r.store(i)
        r.store(("key", None))
        r.storeMany([("k", 1), {"nested": [1.5, b"\x00"]}, "héllo ✓"])
        r.storeBytes("wörld\n\nlast line is open".encode())
        done.set()

    done = threading.Event()
    h = run(ScriptReceiver(script), master=ember_master).start()
    wait_event(done, "the receiver to store everything")
    h.wait_in_blocks(5 + 1 + 3 + 3)
    h.advance()
    got = h.records()
    singles = [r for r in got if isinstance(r, int) or r == ("key", None)]
    assert singles == [0, 1, 2, 3, 4, ("key", None)], "store keeps order and types"
    assert [r for r in got if r in (("k", 1), {"nested": [1.5, b"\x00"]}, "héllo ✓")] == [
        ("k", 1), {"nested": [1.5, b"\x00"]}, "héllo ✓"]
    assert [r for r in got if r in ("wörld", "", "last line is open")] == [
        "wörld", "", "last line is open"], "storeBytes: one record per line, decoded"
    assert len(got) == 12


def test_storeMany_returns_only_once_its_block_is_in_the_tracker(run):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        for i in range(20):
            r.storeMany([i, i, i])
            blocks = h.tracker.unallocated(h.streams[0].id)
            seen.append(bool(blocks) and blocks[-1].records() == [i, i, i])
        done.set()

    seen: list[bool] = []
    done = threading.Event()
    h = run(ScriptReceiver(script), conf={"ember.streaming.blockInterval": "10s"})
    h.start()
    wait_event(done, "20 storeMany calls")
    assert seen == [True] * 20


def test_each_storeMany_call_is_one_block_and_so_one_partition(run, ember_master):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        for i in range(4):
            r.storeMany(range(i * 10, i * 10 + 10))
        done.set()

    done = threading.Event()
    h = run(ScriptReceiver(script), master=ember_master).start()
    wait_event(done, "four storeMany calls")
    h.advance()
    assert h.partitions() == [list(range(i * 10, i * 10 + 10)) for i in range(4)]


def test_store_buffers_records_until_the_next_block_cut(run):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        for i in range(5):
            r.store(i)
        done.set()

    done = threading.Event()
    h = run(ScriptReceiver(script), conf={"ember.streaming.blockInterval": "1h"}).start()
    wait_event(done, "five stores")
    assert h.in_blocks() == 0, "single records wait in the block generator"
    assert h.supervisor().records_received == 5
    h.advance()
    assert h.records() == [], "a batch holds only blocks already cut"


def test_storeBytes_refuses_text(run):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        try:
            r.storeBytes("not bytes\n")  # type: ignore[arg-type]
        except TypeError as exc:
            refused.append(str(exc))
        done.set()

    refused: list[str] = []
    done = threading.Event()
    run(ScriptReceiver(script)).start()
    wait_event(done, "the storeBytes call")
    assert refused and "storeBytes expects bytes, got str" in refused[0]


def test_storing_outside_a_running_stream_raises_a_clear_error():
    receiver = ScriptReceiver(idle, label="Detached")
    with pytest.raises(RuntimeError, match="Detached is not attached to a running stream"):
        receiver.store(1)


# ---------------------------------------------------------------------- blocks


def test_a_block_never_holds_records_stored_on_both_sides_of_a_cut(run, ember_master):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        for burst in range(3):
            for i in range(10):
                r.store((burst, i))
            wait_until(lambda b=burst: h.in_blocks() >= 10 * (b + 1), "the burst's block")
        done.set()

    done = threading.Event()
    h = run(ScriptReceiver(script), master=ember_master,
            conf={"ember.streaming.blockInterval": "50ms"})
    h.start()
    wait_event(done, "three bursts, each cut into blocks")
    h.advance()
    parts = h.partitions()
    assert [r for p in parts for r in p] == [(b, i) for b in range(3) for i in range(10)]
    assert all(p and len({burst for burst, _ in p}) == 1 for p in parts), (
        f"a block mixes records stored before and after a cut: {parts}"
    )
    assert 3 <= len(parts) <= 6, "each burst is one block (two if a cut fell inside it)"


def test_blocks_are_cut_every_blockInterval_so_a_batch_has_about_interval_ratio_partitions(
    run,
):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        i = 0
        while not window.is_set():
            r.store(i)
            i += 1
            window.wait(0.001)

    window = threading.Event()
    h = run(ScriptReceiver(script), conf={"ember.streaming.blockInterval": "100ms"}).start()
    window.wait(0.6)  # the measurement window: about six block intervals
    window.set()
    h.stop(graceful=True)  # the last partial block becomes one more partition
    parts = h.partitions()
    assert all(parts), "no empty block is ever stored"
    assert 4 <= len(parts) <= 10, f"{len(parts)} blocks in 0.6 s at a 100 ms block interval"
    assert h.records() == list(range(len(h.records()))), "blocks keep the records' order"


# ---------------------------------------------------------------------- rate limits


def store_until(window: threading.Event, method: str = "store",
                limit: int = 20_000) -> Callable[[ScriptReceiver, threading.Event], None]:
    """A script storing numbers as fast as it may until ``window`` is set (at most ``limit``)."""

    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        i = 0
        while not window.is_set() and i < limit and not r.isStopped():
            if method == "store":
                r.store(i)
                i += 1
            elif method == "storeMany":
                r.storeMany(range(i, i + 50))
                i += 50
            else:
                r.storeBytes(b"".join(b"%d\n" % n for n in range(i, i + 50)))
                i += 50

    return script


def received_in_window(h: Run, window: threading.Event, seconds: float) -> int:
    h.start()
    window.wait(seconds)  # the measurement window
    window.set()
    return h.supervisor().records_received


@pytest.mark.parametrize("method", ["store", "storeMany", "storeBytes"])
def test_maxRate_limits_intake(run, method):
    window = threading.Event()
    h = run(ScriptReceiver(store_until(window, method)),
            conf={"ember.streaming.receiver.maxRate": 1000})
    got = received_in_window(h, window, 0.5)
    assert 0 < got < 1000, f"{got} records in 0.5 s at maxRate=1000 (expected about 600)"


def test_without_maxRate_intake_is_not_limited(run):
    window = threading.Event()
    h = run(ScriptReceiver(store_until(window, limit=20_000)))
    got = received_in_window(h, window, 0.5)
    assert got == 20_000, f"only {got} records in 0.5 s without a rate limit"


def test_a_store_waiting_for_the_rate_limit_ends_when_the_context_stops(run, ember_no_leaks):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        storing.set()
        r.storeMany(range(1000))  # 100 s of records at 10 a second

    storing = threading.Event()
    h = run(ScriptReceiver(script), conf={"ember.streaming.receiver.maxRate": 10}).start()
    wait_event(storing, "the receiver to start storing")
    took = h.stop()
    assert took < 5, f"stop took {took:.1f} s while a store waited for the rate limit"


# ---------------------------------------------------------------------- backpressure


def test_pid_first_estimate_is_the_processing_rate():
    est = PIDRateEstimator(batch_ms=1000, min_rate=10)
    assert est.compute(1000, elements=1000, processing_delay_ms=500,
                       scheduling_delay_ms=0) == 2000.0


def test_pid_later_estimates_follow_the_proportional_and_integral_terms():
    est = PIDRateEstimator(batch_ms=1000, min_rate=10)  # kp 1.0, ki 0.2, kd 0
    est.compute(1000, 1000, 500, 0)  # 2000 records/s
    # processed 1000 in 1 s: error 2000 - 1000 = 1000; a 500 ms backlog at 1000/s over a
    # 1 s batch: historical error 500.  2000 - 1.0 * 1000 - 0.2 * 500 = 900
    assert est.compute(2000, 1000, 1000, 500) == pytest.approx(900.0)
    # processed 900 in 450 ms = 2000/s, no backlog: error 900 - 2000 = -1100 → 900 + 1100
    assert est.compute(3000, 900, 450, 0) == pytest.approx(2000.0)


def test_pid_derivative_term_starts_from_no_error_after_the_first_batch():
    est = PIDRateEstimator(batch_ms=1000, proportional=1.0, integral=0.0, derivative=0.5,
                           min_rate=1)
    est.compute(1000, 1000, 500, 0)  # 2000/s; there is no error yet
    # 2 s later, 1000/s: error 1000, its change per second (1000 - 0) / 2 = 500
    # 2000 - 1.0 * 1000 - 0.5 * 500 = 750
    assert est.compute(3000, 1000, 1000, 0) == pytest.approx(750.0)


def test_pid_estimate_never_drops_below_minRate():
    est = PIDRateEstimator(batch_ms=1000, min_rate=100)
    assert est.compute(1000, 1, 100, 0) == 100.0, "the first estimate (10/s) is raised too"
    # 10 records in 1 s under a 100 s backlog would drive the rate far below zero
    assert est.compute(2000, 10, 1000, 100_000) == 100.0


def test_pid_learns_nothing_from_empty_instant_or_out_of_order_batches():
    est = PIDRateEstimator(batch_ms=1000, min_rate=10)
    assert est.compute(1000, 0, 500, 0) is None, "no records"
    assert est.compute(1000, 100, 0, 0) is None, "no processing time"
    assert est.compute(2000, 1000, 500, 0) == 2000.0, "the ignored batches changed nothing"
    assert est.compute(2000, 1000, 100, 0) is None, "the same batch time again"
    assert est.compute(1500, 1000, 100, 0) is None, "an older batch time"


def slow_output(clock: ManualClock, seconds: float) -> Callable[[Any, Any], None]:
    """An output that takes ``seconds`` of the streaming clock: the batch's processing time."""

    def output(t: Any, rdd: Any) -> None:
        rdd.count()
        clock.advance(seconds)

    return output


@pytest.mark.parametrize(("max_rate", "limited_to"), [(None, 500.0), (300, 300.0)])
def test_backpressure_limits_a_fast_producer_once_a_batch_completed(run, max_rate, limited_to):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        r.storeMany(range(50))
        first_stored.set()
        wait_event(go, "the first batch")
        store_until(window, limit=100_000)(r, halt)

    first_stored, go, window = threading.Event(), threading.Event(), threading.Event()
    conf = {"ember.streaming.backpressure.enabled": "true",
            "ember.streaming.backpressure.pid.minRate": 10}
    if max_rate:
        conf["ember.streaming.receiver.maxRate"] = max_rate
    h = run(ScriptReceiver(script), conf=conf, output=False)
    h.streams[0].foreachRDD(slow_output(h.clock, 0.1))
    h.start()
    wait_event(first_stored, "the first 50 records")
    assert h.supervisor().limiter.rate == max_rate, "no limit but maxRate before a batch"
    h.advance()  # 50 records processed in 100 ms: 500 records/s
    assert h.supervisor().limiter.rate == pytest.approx(limited_to)
    go.set()
    window.wait(0.5)  # the measurement window
    window.set()
    got = h.supervisor().records_received - 50
    assert 0 < got < limited_to, (
        f"{got} records in 0.5 s after backpressure set {limited_to:g} records/s"
    )


def test_backpressure_initialRate_limits_intake_before_the_first_batch(run):
    window = threading.Event()
    h = run(ScriptReceiver(store_until(window)),
            conf={"ember.streaming.backpressure.enabled": "true",
                  "ember.streaming.backpressure.initialRate": 200})
    got = received_in_window(h, window, 0.5)
    assert 0 < got < 200, f"{got} records in 0.5 s at initialRate=200 (expected about 120)"


# ---------------------------------------------------------------------- restart


class FailsToStart(ScriptReceiver):
    """``onStart`` starts its thread and then raises, ``failures`` times; then it works."""

    def __init__(self, failures: int, script: Callable[..., None]) -> None:
        super().__init__(script, label="FailsToStart")
        self.failures = failures
        self.failed_threads: list[threading.Thread] = []

    def onStart(self) -> None:
        super().onStart()
        if self.starts <= self.failures:
            assert self.thread is not None
            self.failed_threads.append(self.thread)
            raise ConnectionRefusedError(f"cannot connect (attempt {self.starts})")


def store_after_start(r: ScriptReceiver, halt: threading.Event) -> None:
    if r.starts > getattr(r, "failures", 0):
        r.store(f"after start {r.starts}")
    halt.wait()


def test_receiver_raising_in_onStart_is_restarted_after_the_delay_and_data_resumes(run):
    receiver = FailsToStart(1, store_after_start)
    h = run(receiver, conf={"ember.streaming.receiverRestartDelay": "50ms"}).start()
    (error,) = h.events.wait("error")
    assert error.lastErrorMessage() == "FailsToStart.onStart failed"
    assert "ConnectionRefusedError: cannot connect (attempt 1)" in error.lastError()
    assert error.lastErrorTime() == round(START_S * 1000), "the streaming clock's time"
    h.events.wait("started")
    h.wait_in_blocks(1)
    h.advance()
    assert h.records() == ["after start 2"]
    assert receiver.stops >= 1 and not receiver.failed_threads[0].is_alive(), (
        "onStop released the thread the failed onStart had started"
    )


def test_receiver_failing_to_start_again_and_again_is_retried_until_it_starts(run):
    receiver = FailsToStart(3, store_after_start)
    h = run(receiver, conf={"ember.streaming.receiverRestartDelay": "10ms"}).start()
    h.events.wait("started")
    assert receiver.starts == 4
    assert [e.lastErrorMessage() for e in h.events.of("error")] == [
        "FailsToStart.onStart failed"] * 3
    assert receiver.isStarted()


def test_restart_reports_message_and_error_to_listeners_then_data_resumes(run):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        r.store(f"from run {r.starts}")
        if r.starts == 1:
            try:
                raise ConnectionResetError("peer reset")
            except ConnectionResetError as exc:
                r.restart("lost the connection", exc)
        halt.wait()

    receiver = ScriptReceiver(script, label="Flaky")
    h = run(receiver, conf={"ember.streaming.receiverRestartDelay": "10ms",
                            "ember.streaming.blockInterval": "20ms"}).start()
    (error,) = h.events.wait("error")
    assert (error.streamId(), error.name, error.active) == (h.streams[0].id, "Flaky", True)
    assert error.lastErrorMessage() == "lost the connection"
    assert "ConnectionResetError: peer reset" in error.lastError()
    assert "Traceback" in error.lastError()
    h.events.wait("started", 2)
    h.wait_in_blocks(2)
    h.advance()
    assert h.records() == ["from run 1", "from run 2"], "nothing stored before the restart is lost"
    assert (receiver.starts, receiver.stops) == (2, 1)


@pytest.mark.parametrize(("conf_delay", "given_delay"), [("300ms", None), ("10s", 0.3)])
def test_restart_waits_its_delay_before_starting_again(run, conf_delay, given_delay):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        if r.starts == 1:
            asked.append(time.monotonic())
            r.restart("again", None, given_delay)
        halt.wait()

    asked: list[float] = []
    receiver = ScriptReceiver(script)
    h = run(receiver, conf={"ember.streaming.receiverRestartDelay": conf_delay}).start()
    h.events.wait("started", 2)
    waited = receiver.start_times[1] - asked[0]
    assert waited >= 0.3, f"restarted after {waited:.3f} s (delay 0.3 s)"
    assert waited < 5


def test_stop_with_a_message_stops_the_receiver_for_good(run):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        r.store("last record")
        r.stop("no more data")
        try:
            halt.wait(WAIT)
            r.store("too late")
        except RuntimeError as exc:
            refused.append(str(exc))

    refused: list[str] = []
    receiver = ScriptReceiver(script, label="Ending")
    h = run(receiver, conf={"ember.streaming.receiverRestartDelay": "0",
                            "ember.streaming.blockInterval": "20ms"}).start()
    (stopped,) = h.events.wait("stopped")  # told at once, not when the context stops
    assert (stopped.streamId(), stopped.active) == (h.streams[0].id, False)
    assert receiver.isStopped() and not receiver.isStarted()
    wait_until(lambda: refused, "the store after stop to be refused")
    assert "receiver Ending is stopped: data can no longer be stored" in refused[0]
    receiver.restart("try again")
    assert h.supervisor()._restart_thread is None, "a receiver stopped for good never restarts"
    h.wait_in_blocks(1)
    h.advance(2)
    assert h.records() == ["last record"], "what it stored before stopping is processed"
    h.stop()
    assert (receiver.starts, receiver.stops) == (1, 1)
    assert len(h.events.of("stopped")) == 1, "the stop is reported once"


def test_reportError_tells_listeners_and_the_receiver_keeps_running(run):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        r.store("before")
        r.reportError("slow source")
        r.store("after")
        done.set()
        halt.wait()

    done = threading.Event()
    receiver = ScriptReceiver(script)
    h = run(receiver, conf={"ember.streaming.blockInterval": "20ms"}).start()
    wait_event(done, "the receiver to report")
    (error,) = h.events.of("error")
    assert (error.lastErrorMessage(), error.lastError(), error.active) == (
        "slow source", "slow source", True)
    assert receiver.isStarted() and receiver.starts == 1
    h.wait_in_blocks(2)
    h.advance()
    assert h.records() == ["before", "after"]


def test_isStarted_and_isStopped_follow_the_receivers_life(run):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        if r.starts == 1:
            r.restart("pause", None, 30.0)
        halt.wait()

    receiver = ScriptReceiver(script)
    assert (receiver.isStarted(), receiver.isStopped(), receiver.streamId) == (False, True, None)
    h = run(receiver)
    assert receiver.streamId == h.streams[0].id
    assert (receiver.isStarted(), receiver.isStopped()) == (False, True), "not started yet"
    h.start()
    wait_until(lambda: receiver.stops == 1, "the restart to stop the receiver")
    assert (receiver.isStarted(), receiver.isStopped()) == (False, True), "waiting to restart"
    assert h.stop() < 5, "a stop does not wait for a pending restart's delay"
    assert (receiver.isStarted(), receiver.isStopped()) == (False, True)
    assert receiver.starts == 1


def test_listeners_see_started_error_stopped_with_receiver_info(run):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        wait_event(go, "the test to see the receiver started")
        r.reportError("hiccup", ValueError("bad byte"))
        halt.wait()

    go = threading.Event()
    h = run(ScriptReceiver(script, label="Info")).start()
    h.events.wait("started")
    go.set()
    h.events.wait("error")
    h.stop()
    assert [k for k, _ in h.events.calls] == ["started", "error", "stopped"]
    started, error, stopped = (info for _, info in h.events.calls)
    sid = h.streams[0].id
    assert started == ReceiverInfo(sid, "Info", True)
    assert (started.location, started.executor_id, started.lastErrorTime()) == (
        "driver", "driver", -1)
    assert (error.name, error.active, error.lastErrorMessage()) == ("Info", True, "hiccup")
    assert "ValueError: bad byte" in error.lastError()
    assert (stopped.name, stopped.active, stopped.lastErrorMessage()) == (
        "Info", False, "hiccup"), "the stopped event still carries the last error"


# ---------------------------------------------------------------------- receiverStream


def test_the_same_receiver_cannot_feed_two_streams(run):
    receiver = ScriptReceiver(idle)
    h = run(receiver)
    with pytest.raises(ValueError, match="already feeds another stream"):
        h.ssc.receiverStream(receiver)


def test_receiverStream_refuses_what_is_not_a_receiver(run):
    h = run()
    with pytest.raises(TypeError, match=r"expects an ember\.receivers\.Receiver, got list"):
        h.ssc.receiverStream([1, 2])


def test_a_receiver_whose_init_skips_super_init_still_works(run):
    class Forgetful(Receiver):
        def __init__(self) -> None:  # no super().__init__()
            self.done = threading.Event()

        def onStart(self) -> None:
            self.storeMany(["works"])
            self.done.set()

        def onStop(self) -> None:
            pass

    receiver = Forgetful()
    h = run(receiver).start()
    wait_event(receiver.done, "onStart")
    h.advance()
    assert h.records() == ["works"]


def test_a_union_of_receiver_streams_gets_every_record_of_each(run):
    def numbers(start: int) -> Callable[[ScriptReceiver, threading.Event], None]:
        def script(r: ScriptReceiver, halt: threading.Event) -> None:
            r.storeMany(range(start, start + 5))
            halt.wait()
        return script

    h = run(ScriptReceiver(numbers(0)), ScriptReceiver(numbers(100)), output=False)
    got: list[list[int]] = []
    h.ssc.union(*h.streams).foreachRDD(lambda rdd: got.append(sorted(rdd.collect())))
    h.start()
    h.wait_in_blocks(5, 0)
    h.wait_in_blocks(5, 1)
    h.advance()
    assert got == [[0, 1, 2, 3, 4, 100, 101, 102, 103, 104]]


# ---------------------------------------------------------------------- stopping


def test_graceful_stop_processes_every_received_record_without_advancing_the_clock(
    run, ember_master, ember_no_leaks
):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        for i in range(100):
            r.store(i)
        r.storeMany(["a", "b"])
        r.storeBytes(b"x\ny\n")
        done.set()
        halt.wait()

    done = threading.Event()
    # A block interval of an hour: the single records are still buffered when the stop comes.
    h = run(ScriptReceiver(script), master=ember_master,
            conf={"ember.streaming.blockInterval": "1h"}).start()
    wait_event(done, "the receiver to store everything")
    assert h.clock.now_ms() == START_S * 1000 and h.records() == []
    h.stop(graceful=True)
    assert sorted(h.records(), key=repr) == sorted([*range(100), "a", "b", "x", "y"], key=repr)


def test_immediate_stop_is_prompt_and_drops_blocks_not_yet_in_a_batch(
    run, ember_master, ember_no_leaks
):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        r.storeMany(range(100))
        done.set()
        halt.wait()

    done = threading.Event()
    h = run(ScriptReceiver(script), master=ember_master).start()
    wait_event(done, "the receiver to store")
    assert h.stop(graceful=False) < 5
    assert h.records() == []


def test_graceful_stop_ends_though_no_output_uses_a_receiver_stream(run, caplog):
    def script(r: ScriptReceiver, halt: threading.Event) -> None:
        r.storeMany([1, 2, 3])
        halt.wait()

    unused = ScriptReceiver(script, label="Unused")
    h = run(unused, output=False)
    h.ssc.queueStream([[1]]).foreachRDD(lambda rdd: rdd.count())
    with caplog.at_level(logging.WARNING, logger="ember.streaming"):
        h.start()
    assert "input stream 0 (receiver Unused) is not used by any output operation" in caplog.text
    assert unused.starts == 0, "its receiver is not started, so nothing piles up"
    stopper = threading.Thread(target=h.stop, kwargs={"graceful": True}, daemon=True)
    stopper.start()
    stopper.join(WAIT)
    assert not stopper.is_alive(), "the graceful stop hung"


@pytest.mark.parametrize(("master", "receivers", "warns"), [
    ("inline", 1, True),
    ("local[2]", 1, False),
    ("local[2]", 2, True),
])
def test_warns_when_there_are_not_more_slots_than_receivers(run, caplog, master, receivers,
                                                             warns):
    h = run(*[ScriptReceiver(idle) for _ in range(receivers)], master=master)
    with caplog.at_level(logging.WARNING, logger="ember.streaming"):
        h.start()
    warned = [r for r in caplog.records
              if r.name == "ember.streaming" and "give the application more slots" in r.message]
    assert bool(warned) == warns
    if warns:
        assert f"{receivers} receiver(s)" in warned[0].message
