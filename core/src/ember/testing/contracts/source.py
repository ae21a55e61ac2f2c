"""The source contracts: what every ``ember.sources`` plugin must do, run on real streams.

Two suites:

- :class:`SourceContract`, for any source: pull-based (files, a queue) or receiver-based.
- :class:`ReceiverContract`, for receiver-based sources and custom receivers: everything in
  :class:`SourceContract`, plus the receiver's lifecycle, restart after a failure, graceful
  stop and what listeners see.

A plugin subclasses one of them and provides two fixtures, ``feed`` and ``source_factory``::

    class TestSocketSource(ReceiverContract):
        @pytest.fixture
        def feed(self):
            server = LineServer()              # your helper: a TCP server on a free port
            yield server
            server.close()

        @pytest.fixture
        def source_factory(self, feed):
            return lambda: SocketSource(hostname="127.0.0.1", port=feed.port)

Required fixtures:

- ``feed``: what the test pushes records into, outside the source: a server the receiver
  connects to, a directory a file source watches, an in-memory queue. It must have

  - ``send(records: list) -> None``: make the source deliver ``records`` (as returned by
    ``expected_records``) in this order. It returns once they are handed over (written to
    the connection, the file renamed into place); it must not wait for the stream. Records
    sent while no client is connected are kept until one is (a server feed queues them).
  - ``fail() -> None`` (:class:`ReceiverContract` only): make the source's connection fail
    the way the outside system fails (a server closes the client's connection; a custom
    receiver's feed makes it raise). The receiver must notice, call ``restart(...)``, and
    go on receiving what is sent afterwards — also what is sent right after ``fail()``,
    before the receiver has noticed: the feed keeps it for the next connection.
  - ``connections: int`` (optional): how many times a source has connected to the feed so
    far. When the feed has it, starting a stream waits until it grows. A feed that cannot
    tell a live connection from one just closed (a ZeroMQ ``PUB`` socket still routing to
    the stopped stream's subscriber) needs this, or what is sent for the new stream may go
    to the old one.

- ``source_factory``: a function of no arguments building the source under test, connected
  to ``feed``, exactly as a user would build it: a :class:`~ember.sources.Source` (a
  :class:`~ember.sources.PullSource` or a :class:`~ember.receivers.ReceiverSource`), or a
  bare :class:`~ember.receivers.Receiver` for ``ssc.receiverStream``. It is called once per
  stream; each stream started from a source of the same feed must get what is sent next.

Capability fixtures (override when the default does not describe your source):

- ``expected_records`` (default: strings ``"record-<i>"``): a function ``(n, start=0)``
  returning ``n`` distinct records that ``feed.send`` accepts and the stream yields back
  unchanged; records of different ``start`` never collide.
- ``delivery`` (default :attr:`Delivery.AT_MOST_ONCE`): the guarantee the source declares.
  ``AT_LEAST_ONCE`` lets records come more than once after a failure or a restart.
- ``preserves_order`` (default ``True``): records arrive in the order they were sent (within
  one receiver); when ``False`` they are compared as multisets.
- ``supports_restore`` (default ``False``): the source is a ``PullSource`` whose
  ``snapshot()``, taken after a batch, lets a new source given it by ``restore(state)`` go on
  from there without delivering those records again. When ``False``, ``snapshot()`` (if
  the source has one) must return ``None``.

Provided fixtures a subclass may use or override: ``source_conf`` (the configuration of the
contract's contexts: a 50 ms block interval, a 100 ms restart delay), ``source_context``
(the running :class:`ember.Context`, once per executor of ``ember_master``) and
``run_stream`` (starts a stream of a built source; see :class:`StreamRun`).

Time: each stream runs on a :class:`~ember.testing.ManualClock` that follows the wall clock
in steps of the batch interval (0.1 s): a batch runs when the test asks for it, and its
time is never later than the wall clock, so a file written before a batch is older than
it. Every wait is bounded (30 s); nothing sleeps to wait for a condition.
"""

from __future__ import annotations

import collections
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Protocol

import cloudpickle
import pytest

from ember.conf import Conf
from ember.context import Context
from ember.events import BatchInfo, ReceiverInfo
from ember.plugins import api_version_fits
from ember.receivers import Receiver, ReceiverSource
from ember.sources import Delivery, Source
from ember.streaming import StreamingContext, StreamingListener
from ember.testing import ManualClock, wait_until
from ember.testing.contracts.base import ContractTests

__all__ = ["Feed", "ReceiverContract", "SourceContract", "StreamRun"]

#: Seconds a test waits at most for something that happens at once unless broken.
WAIT = 30.0
#: Seconds a stop may take, even when the source sends nothing.
PROMPT_STOP = 5.0
#: The batch interval of the contract's streams, in milliseconds.
BATCH_MS = 100


class Feed(Protocol):
    """What the ``feed`` fixture provides (see the module documentation)."""

    def send(self, records: list[Any]) -> None:
        """Make the source deliver ``records``, in order."""

    def fail(self) -> None:
        """Make the source's connection fail (receiver-based sources only)."""


def _counts(records: list[Any]) -> collections.Counter[str]:
    return collections.Counter(repr(r) for r in records)


def _missing(got: list[Any], want: list[Any]) -> list[Any]:
    """The records of ``want`` (with multiplicity) that ``got`` lacks."""
    have = _counts(got)
    out = []
    for record in want:
        key = repr(record)
        if have[key] > 0:
            have[key] -= 1
        else:
            out.append(record)
    return out


def _wait_connected(feed: Any, before: int) -> None:
    """Wait until ``feed.connections`` exceeds ``before`` (a new stream connected)."""
    wait_until(lambda: feed.connections > before,
               f"the new stream to connect to the feed (feed.connections stayed {before})",
               WAIT)


def _first_occurrences(records: list[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for record in records:
        key = repr(record)
        if key not in seen:
            seen.add(key)
            out.append(record)
    return out


def _assert_delivered(got: list[Any], sent: list[Any], delivery: Delivery,
                      preserves_order: bool) -> None:
    """Every sent record arrived; exactly once unless at-least-once; in order if promised."""
    missing = _missing(got, sent)
    assert not missing, f"{len(missing)} of {len(sent)} records never arrived: {missing[:10]!r}"
    if delivery is Delivery.AT_LEAST_ONCE:
        known = _counts(sent)
        extra = [r for r in _first_occurrences(got) if repr(r) not in known]
        assert not extra, f"records that were never sent arrived: {extra[:10]!r}"
        got = _first_occurrences(got)
    else:
        extra = _missing(sent, got)
        assert not extra, (
            f"{len(extra)} records arrived more often than sent (duplicates or records never "
            f"sent), though the source is {delivery.value}: {extra[:10]!r}"
        )
    if preserves_order:
        assert got == sent, "records arrived out of the order they were sent in"


class _Events(StreamingListener):
    """Receiver events and completed batches, with bounded waits."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.receiver: list[tuple[str, ReceiverInfo]] = []
        self.batches: list[BatchInfo] = []

    def _add(self, kind: str, info: ReceiverInfo) -> None:
        with self._cond:
            self.receiver.append((kind, info))
            self._cond.notify_all()

    def onReceiverStarted(self, receiverStarted: Any) -> None:
        self._add("started", receiverStarted.receiverInfo())

    def onReceiverError(self, receiverError: Any) -> None:
        self._add("error", receiverError.receiverInfo())

    def onReceiverStopped(self, receiverStopped: Any) -> None:
        self._add("stopped", receiverStopped.receiverInfo())

    def onBatchCompleted(self, batchCompleted: Any) -> None:
        with self._cond:
            self.batches.append(batchCompleted.batchInfo())
            self._cond.notify_all()

    def of(self, kind: str) -> list[ReceiverInfo]:
        with self._cond:
            return [info for k, info in self.receiver if k == kind]

    def wait(self, kind: str, n: int = 1, timeout: float | None = None) -> list[ReceiverInfo]:
        timeout = WAIT if timeout is None else timeout
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.of(kind)) >= n, timeout)
        assert ok, (f"listeners saw {len(self.of(kind))} onReceiver{kind.title()} events "
                    f"within {timeout:g} s, expected {n}: {self.receiver!r}")
        return self.of(kind)


class StreamRun:
    """One StreamingContext running one stream of a built source, on a manual clock that
    follows the wall clock; keeps what every batch held.

    :param context: the :class:`ember.Context` to run on.
    :param built: what ``source_factory`` returned (a ``Source`` or a ``Receiver``).
    """

    def __init__(self, context: Context, built: Any) -> None:
        self.interval_ms = BATCH_MS
        now = time.time_ns() // 1_000_000
        self.clock = ManualClock((now // BATCH_MS) * BATCH_MS / 1000.0)
        self.ssc = StreamingContext(context, BATCH_MS / 1000.0, clock=self.clock)
        self.events = _Events()
        self.ssc.addStreamingListener(self.events)
        self._lock = threading.Lock()
        self.batches: dict[int, list[Any]] = {}
        if isinstance(built, Source):
            self.stream = built.createStream(self.ssc)
        elif isinstance(built, Receiver):
            self.stream = self.ssc.receiverStream(built)
        else:
            raise TypeError(f"source_factory built {built!r}: neither an ember Source nor "
                            f"an ember Receiver")
        self.stream.foreachRDD(self._keep)
        self.ssc.start()

    def _keep(self, t: Any, rdd: Any) -> None:
        records = rdd.collect()
        with self._lock:
            self.batches[round(t.timestamp() * 1000)] = records

    # ------------------------------------------------------------------ what came in
    def records(self) -> list[Any]:
        """Every record of every batch so far, in batch order."""
        with self._lock:
            return [r for t in sorted(self.batches) for r in self.batches[t]]

    @property
    def input_stream(self) -> Any:
        """The input DStream of the source (the receiver's stream for receiver sources)."""
        inputs = self.ssc._graph.inputs
        assert len(inputs) == 1, f"the source made {len(inputs)} input streams, expected 1"
        return inputs[0]

    @property
    def receiver(self) -> Receiver:
        """The running receiver (receiver-based sources)."""
        receiver = getattr(self.input_stream, "receiver", None)
        assert isinstance(receiver, Receiver), "the source's stream is not receiver-based"
        return receiver

    def records_received(self) -> int:
        """How many records the receiver stored so far (receiver-based sources)."""
        supervisor = getattr(self.input_stream, "supervisor", None)
        assert supervisor is not None, "the receiver has not been started"
        return int(supervisor.records_received)

    # ------------------------------------------------------------------ driving time
    def step(self, timeout: float | None = None) -> int:
        """Run the next batch once its time has come on the wall clock; return its time."""
        timeout = WAIT if timeout is None else timeout
        iv = self.interval_ms
        due = (self.clock.now_ms() // iv + 1) * iv
        ahead = due - time.time_ns() // 1_000_000
        if ahead > 0:  # pacing: batch times never run ahead of the wall clock
            time.sleep(ahead / 1000.0)
        target = max(due, (time.time_ns() // 1_000_000) // iv * iv)
        self.clock.set_time(target / 1000.0)
        self.ssc._await_batch(target, timeout)
        return target

    def wait_for(self, predicate: Callable[[], bool], what: Callable[[], str],
                 timeout: float | None = None) -> None:
        """Run batches until ``predicate()`` holds; fail after ``timeout`` seconds (default
        :data:`WAIT`)."""
        timeout = WAIT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s: {what()}")
            self.step()
        self.ssc.awaitTerminationOrTimeout(0)  # raises a batch's error, if any

    def wait_for_records(self, sent: list[Any], timeout: float | None = None) -> None:
        """Run batches until every record of ``sent`` has arrived."""
        self.wait_for(
            lambda: not _missing(self.records(), sent),
            lambda: (f"{len(_missing(self.records(), sent))} of {len(sent)} records sent "
                     f"have not arrived, e.g. {_missing(self.records(), sent)[:5]!r}"),
            timeout,
        )

    def wait_received(self, n: int, timeout: float | None = None) -> None:
        """Wait, without running a batch, until the receiver stored ``n`` records."""
        timeout = WAIT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while self.records_received() < n:
            assert time.monotonic() < deadline, (
                f"the receiver stored {self.records_received()} records within {timeout:g} s, "
                f"expected {n}"
            )
            time.sleep(0.01)

    def stop(self, graceful: bool = False) -> float:
        """Stop the StreamingContext (not the Context); return the seconds it took."""
        start = time.monotonic()
        self.ssc.stop(stopSparkContext=False, stopGraceFully=graceful)
        return time.monotonic() - start


class SourceContract(ContractTests):
    """The rules of every source, as tests of real streams.

    Required fixtures: ``feed``, ``source_factory``. Capability fixtures:
    ``expected_records``, ``delivery``, ``preserves_order``, ``supports_restore``.
    """

    __ember_contract__: ClassVar[bool] = True

    # ------------------------------------------------------------------ required fixtures

    @pytest.fixture
    def feed(self) -> Feed:
        """Return (or yield, and clean up after) what the test pushes records into.

        It has ``send(records)`` (and, for receiver-based sources, ``fail()``): see the
        module documentation of :mod:`ember.testing.contracts.source`. Start whatever it
        needs (a server on a free port, a directory) here, and stop it after the ``yield``.
        """
        raise NotImplementedError(
            "a source contract subclass must define the `feed` fixture: an object with "
            "send(records) (and fail() for receivers) through which the test feeds the source"
        )

    @pytest.fixture
    def source_factory(self) -> Callable[[], Any]:
        """Return a function of no arguments building the source under test, fed by ``feed``.

        It returns a :class:`~ember.sources.Source`, or a :class:`~ember.receivers.Receiver`
        for ``ssc.receiverStream``, built as a user builds it, e.g.
        ``return lambda: SocketSource(hostname="127.0.0.1", port=feed.port)``.
        """
        raise NotImplementedError(
            "a source contract subclass must define the `source_factory` fixture, returning a "
            "function of no arguments that builds the source under test connected to `feed`"
        )

    # ------------------------------------------------------------------ capability fixtures

    @pytest.fixture
    def expected_records(self) -> Callable[..., list[Any]]:
        """Return a function ``(n, start=0)`` giving ``n`` distinct records that ``feed.send``
        takes and the stream yields unchanged (default: ``"record-<start+i>"`` strings)."""

        def make(n: int, start: int = 0) -> list[Any]:
            return [f"record-{i}" for i in range(start, start + n)]

        return make

    @pytest.fixture
    def delivery(self) -> Delivery:
        """Return the delivery guarantee the source declares (default at most once)."""
        return Delivery.AT_MOST_ONCE

    @pytest.fixture
    def preserves_order(self) -> bool:
        """Return whether records arrive in the order sent (default ``True``)."""
        return True

    @pytest.fixture
    def supports_restore(self) -> bool:
        """Return whether ``snapshot()``/``restore(state)`` let a new source go on where a
        stopped one left off (default ``False``)."""
        return False

    # ------------------------------------------------------------------ provided fixtures

    @pytest.fixture
    def source_conf(self) -> dict[str, str]:
        """The configuration of the contract's contexts (override to add keys)."""
        return {
            "ember.streaming.blockInterval": "50ms",
            "ember.streaming.receiverRestartDelay": "100ms",
        }

    @pytest.fixture
    def source_context(self, ember_master: str, source_conf: dict[str, str],
                       tmp_path: Any) -> Iterator[Context]:
        """A running :class:`ember.Context` on each executor of ``ember_master``."""
        ctx = Context(ember_master, "source-contract", conf=Conf().setAll(source_conf.items()))
        ctx.setCheckpointDir(str(tmp_path / "checkpoints"))
        try:
            yield ctx
        finally:
            ctx.stop()

    @pytest.fixture
    def run_stream(self, source_context: Context,
                   feed: Feed) -> Iterator[Callable[[Any], StreamRun]]:
        """A function starting a :class:`StreamRun` of a built source; runs still active at
        the end of the test are stopped. When the feed counts ``connections``, it returns
        once the new stream has connected."""
        runs: list[StreamRun] = []

        def start(built: Any) -> StreamRun:
            before = getattr(feed, "connections", None)
            run = StreamRun(source_context, built)
            runs.append(run)
            if before is not None:
                _wait_connected(feed, before)
            return run

        try:
            yield start
        finally:
            for run in runs:
                run.ssc.stop(stopSparkContext=False)

    # ------------------------------------------------------------------ declarations

    def test_source_is_an_ember_source_or_receiver(self, source_factory: Callable[[], Any]) -> None:
        built = source_factory()
        assert isinstance(built, (Source, Receiver)), (
            f"source_factory built {type(built).__name__}, not an ember Source or Receiver"
        )

    def test_declares_an_api_version_this_ember_core_accepts(
        self, source_factory: Callable[[], Any]
    ) -> None:
        declared = getattr(source_factory(), "api_version", None)
        assert isinstance(declared, str), "the source declares no api_version"
        assert api_version_fits(declared), f"api_version {declared!r} does not fit this ember-core"

    def test_declares_its_delivery_guarantee(self, source_factory: Callable[[], Any],
                                             delivery: Delivery) -> None:
        declared = getattr(source_factory(), "delivery", None)
        assert isinstance(declared, Delivery), f"delivery must be an ember Delivery: {declared!r}"
        assert declared is delivery, f"the source declares {declared}, the test expects {delivery}"

    def test_constructing_the_source_opens_nothing(self, source_factory: Callable[[], Any]) -> None:
        threads_before = set(threading.enumerate())
        fds_before = _open_fds()
        source_factory()
        started = [t.name for t in threading.enumerate() if t not in threads_before]
        assert not started, f"building the source started threads: {started}"
        assert _open_fds() == fds_before, (
            "building the source opened files or sockets: open them when the stream starts"
        )

    def test_source_is_picklable_before_it_starts(self, source_factory: Callable[[], Any]) -> None:
        built = source_factory()
        copy = pickle.loads(pickle.dumps(built))
        assert type(copy) is type(built)
        assert pickle.loads(pickle.dumps(copy)) is not None

    # ------------------------------------------------------------------ data

    def test_records_arrive_complete_and_in_order(
        self, run_stream: Callable[[Any], StreamRun], feed: Feed,
        source_factory: Callable[[], Any], expected_records: Callable[..., list[Any]],
        delivery: Delivery, preserves_order: bool,
    ) -> None:
        run = run_stream(source_factory())
        sent: list[Any] = []
        for part in range(3):
            records = expected_records(10, 10 * part)
            feed.send(records)
            sent += records
            run.wait_for_records(sent)
        _assert_delivered(run.records(), sent, delivery, preserves_order)

    def test_many_records_sent_at_once_arrive_complete(
        self, run_stream: Callable[[Any], StreamRun], feed: Feed,
        source_factory: Callable[[], Any], expected_records: Callable[..., list[Any]],
        delivery: Delivery, preserves_order: bool,
    ) -> None:
        run = run_stream(source_factory())
        sent = expected_records(5000)
        feed.send(sent)
        run.wait_for_records(sent)
        _assert_delivered(run.records(), sent, delivery, preserves_order)

    def test_batches_without_data_are_empty_not_errors(
        self, run_stream: Callable[[Any], StreamRun], source_factory: Callable[[], Any]
    ) -> None:
        run = run_stream(source_factory())
        times = [run.step() for _ in range(3)]
        assert [run.batches.get(t) for t in times] == [[], [], []]
        run.ssc.awaitTerminationOrTimeout(0)  # raises a batch's error, if any

    def test_a_new_stream_on_the_same_feed_works_after_the_first_stopped(
        self, run_stream: Callable[[Any], StreamRun], feed: Feed,
        source_factory: Callable[[], Any], expected_records: Callable[..., list[Any]],
        delivery: Delivery, preserves_order: bool,
    ) -> None:
        first = run_stream(source_factory())
        before = expected_records(10, 0)
        feed.send(before)
        first.wait_for_records(before)
        first.stop()
        second = run_stream(source_factory())
        after = expected_records(10, 10)
        feed.send(after)
        second.wait_for_records(after)
        got = second.records()
        done = _counts(before)
        if delivery is not Delivery.AT_LEAST_ONCE:
            again = [r for r in got if repr(r) in done]
            assert not again, f"records of the stopped stream arrived again: {again[:5]!r}"
        _assert_delivered([r for r in got if repr(r) not in done], after, delivery,
                          preserves_order)

    def test_snapshot_lets_a_new_source_go_on_or_is_none(
        self, run_stream: Callable[[Any], StreamRun], feed: Feed,
        source_factory: Callable[[], Any], expected_records: Callable[..., list[Any]],
        supports_restore: bool, delivery: Delivery, preserves_order: bool,
    ) -> None:
        built = source_factory()
        run = run_stream(built)
        before = expected_records(10, 0)
        feed.send(before)
        run.wait_for_records(before)
        snapshot = getattr(built, "snapshot", None)
        if supports_restore:
            assert snapshot is not None, "supports_restore is True, but there is no snapshot()"
            state = pickle.loads(pickle.dumps(snapshot()))  # checkpoints keep it pickled
            run.stop()
            restored = source_factory()
            restored.restore(state)
            second = run_stream(restored)
            after = expected_records(10, 10)
            feed.send(after)
            second.wait_for_records(after)
            done = _counts(before)
            again = [r for r in second.records() if repr(r) in done]
            assert not again, f"records processed before the snapshot came again: {again[:5]!r}"
            _assert_delivered(second.records(), after, delivery, preserves_order)
        else:
            assert snapshot is None or snapshot() is None, (
                "snapshot() returned state, but the test says the source cannot restore "
                "(supports_restore is False)"
            )

    # ------------------------------------------------------------------ stopping

    @pytest.mark.parametrize("graceful", [False, True], ids=["immediate", "graceful"])
    def test_stop_is_prompt_when_the_source_sends_nothing(
        self, run_stream: Callable[[Any], StreamRun], source_factory: Callable[[], Any],
        graceful: bool,
    ) -> None:
        run = run_stream(source_factory())
        run.step()
        run.step()
        took = run.stop(graceful)
        assert took < PROMPT_STOP, f"stop(stopGraceFully={graceful}) took {took:.1f} s"

    def test_stop_leaves_no_thread_or_process_running(
        self, ember_no_leaks: None, run_stream: Callable[[Any], StreamRun], feed: Feed,
        source_factory: Callable[[], Any], expected_records: Callable[..., list[Any]],
    ) -> None:
        # ember_no_leaks, set up first and torn down last, fails the test if anything the
        # test started (the stream, the context, the feed's connections) is still running.
        run = run_stream(source_factory())
        records = expected_records(10)
        feed.send(records)
        run.wait_for_records(records)
        run.stop()


class ReceiverContract(SourceContract):
    """The rules of receiver-based sources and custom receivers, as tests of real streams.

    Everything in :class:`SourceContract`, plus the receiver's lifecycle. Required fixtures:
    ``feed`` (with ``send`` and ``fail``), ``source_factory`` (a ``ReceiverSource`` or a
    ``Receiver``).
    """

    __ember_contract__: ClassVar[bool] = True

    def test_source_makes_a_new_receiver_for_each_stream(
        self, source_factory: Callable[[], Any]
    ) -> None:
        built = source_factory()
        assert isinstance(built, (ReceiverSource, Receiver)), (
            f"a receiver-based source is a ReceiverSource or a Receiver, not "
            f"{type(built).__name__}"
        )
        if isinstance(built, ReceiverSource):
            one, two = built.createReceiver(), built.createReceiver()
            assert isinstance(one, Receiver) and isinstance(two, Receiver)
            assert one is not two, "createReceiver must build a new receiver each time"
            built = one
        assert not built.isStarted() and built.isStopped(), "a new receiver is not started"

    def test_receiver_is_started_while_the_stream_runs_and_stopped_after(
        self, run_stream: Callable[[Any], StreamRun], source_factory: Callable[[], Any]
    ) -> None:
        run = run_stream(source_factory())
        receiver = run.receiver
        assert receiver.isStarted() and not receiver.isStopped()
        assert receiver.streamId == run.input_stream.id
        run.stop()
        assert receiver.isStopped() and not receiver.isStarted()

    def test_a_running_receiver_pickles_as_its_configuration(
        self, run_stream: Callable[[Any], StreamRun], feed: Feed,
        source_factory: Callable[[], Any], expected_records: Callable[..., list[Any]],
    ) -> None:
        # Metadata checkpoints keep the DStream graph, receivers included, while they run:
        # a receiver must leave its runtime state (clients, threads, buffers) out of its
        # pickled state (Receiver.__getstate__ drops the common kinds; see docs/receivers.md).
        run = run_stream(source_factory())
        records = expected_records(10)
        feed.send(records)
        run.wait_for_records(records)
        receiver = run.receiver
        try:
            copy = cloudpickle.loads(cloudpickle.dumps(receiver))
        except Exception as exc:
            raise AssertionError(
                f"a running {type(receiver).__name__} cannot be pickled, so no checkpoint "
                f"of its stream can be written: {type(exc).__name__}: {exc}"
            ) from exc
        assert type(copy) is type(receiver)
        assert copy.isStopped() and not copy.isStarted(), "a restored copy is not running"
        assert receiver.isStarted(), "pickling must not disturb the running receiver"

    def test_listeners_see_the_receiver_start_and_stop_and_no_error_in_a_healthy_run(
        self, run_stream: Callable[[Any], StreamRun], feed: Feed,
        source_factory: Callable[[], Any], expected_records: Callable[..., list[Any]],
    ) -> None:
        run = run_stream(source_factory())
        (started,) = run.events.wait("started")
        assert started.streamId() == run.input_stream.id and started.active
        assert isinstance(started.name, str) and started.name
        records = expected_records(10)
        feed.send(records)
        run.wait_for_records(records)
        run.stop()
        (stopped,) = run.events.of("stopped")
        assert stopped.streamId() == run.input_stream.id and not stopped.active
        assert run.events.of("error") == [], "a healthy run reports no receiver error"

    def test_listeners_count_the_records_of_each_batch(
        self, run_stream: Callable[[Any], StreamRun], feed: Feed,
        source_factory: Callable[[], Any], expected_records: Callable[..., list[Any]],
    ) -> None:
        run = run_stream(source_factory())
        records = expected_records(30)
        feed.send(records)
        run.wait_for_records(records)
        stream_id = run.input_stream.id
        counted = {b.batch_time: b.streamIdToInputInfo()[stream_id].numRecords()
                   for b in list(run.events.batches)}
        assert counted == {t: len(got) for t, got in run.batches.items()}

    def test_feed_failure_restarts_the_receiver_and_later_records_arrive(
        self, run_stream: Callable[[Any], StreamRun], feed: Feed,
        source_factory: Callable[[], Any], expected_records: Callable[..., list[Any]],
        delivery: Delivery, preserves_order: bool,
    ) -> None:
        run = run_stream(source_factory())
        before = expected_records(10, 0)
        feed.send(before)
        run.wait_for_records(before)
        feed.fail()
        after = expected_records(10, 10)
        feed.send(after)  # while the receiver fails and restarts: kept by the feed until then
        (error, *_) = run.events.wait("error")
        assert error.streamId() == run.input_stream.id
        assert error.lastErrorMessage(), "the restart is reported with a message"
        run.wait_for_records(before + after)
        run.events.wait("started", 2)
        _assert_delivered(run.records(), before + after, delivery, preserves_order)

    def test_graceful_stop_processes_every_record_already_received(
        self, run_stream: Callable[[Any], StreamRun], feed: Feed,
        source_factory: Callable[[], Any], expected_records: Callable[..., list[Any]],
        delivery: Delivery, preserves_order: bool,
    ) -> None:
        run = run_stream(source_factory())
        records = expected_records(50)
        feed.send(records)
        run.wait_received(len(records))  # stored by the receiver; no batch has run yet
        assert run.batches == {}
        run.stop(graceful=True)
        _assert_delivered(run.records(), records, delivery, preserves_order)

    def test_stop_soon_after_a_failure_is_prompt_and_leaves_nothing_running(
        self, ember_no_leaks: None, ember_master: str, source_conf: dict[str, str],
        feed: Feed, source_factory: Callable[[], Any],
        expected_records: Callable[..., list[Any]],
    ) -> None:
        # A long restart delay: the stop comes while the supervisor waits to restart.
        conf = Conf().setAll(source_conf.items()).set("ember.streaming.receiverRestartDelay",
                                                      "30s")
        ctx = Context(ember_master, "source-contract-restart", conf=conf)
        try:
            run = StreamRun(ctx, source_factory())
            try:
                records = expected_records(10)
                feed.send(records)
                run.wait_for_records(records)
                feed.fail()
                run.events.wait("error")
            finally:
                took = run.stop()
            assert took < PROMPT_STOP, f"stop during a restart took {took:.1f} s"
        finally:
            ctx.stop()


def _open_fds() -> int:
    """How many file descriptors this process has open."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - not Linux
        import psutil

        return int(psutil.Process().num_fds())

