"""The UI's memory: what the hooks saw, in bounded structures, and immutable snapshots of it.

The hooks run in the engine's threads (the job generator, the job threads, receiver
threads) and must never slow a batch down, so each one only takes :attr:`StreamingStore.lock`
for a few dictionary or deque operations on the *event objects themselves* (they are frozen
attrs objects, so keeping a reference is safe) and bumps :attr:`StreamingStore.version`.
Nothing is formatted, sorted or summed there. The web server's thread takes a
:class:`Snapshot` (a copy of the references, under the same lock, a few microseconds for
a thousand batches) and does every computation on it.

Bounds: completed batches are kept in a ``deque(maxlen=retained)``; queued and running
batches are removed when they complete (the scheduler holds them too); the per-stream
totals and the receivers have one entry per input stream; the job ids of output
operations are dropped with their batch.
"""

from __future__ import annotations

import bisect
import collections
import threading
from typing import Any

import attrs
from ember.events import BatchInfo, OutputOperationInfo, ReceiverInfo

__all__ = ["DELAY_BUCKETS", "Snapshot", "StreamingStore"]

#: Upper bounds (seconds) of the delay histograms exported on ``/metrics`` (Prometheus'
#: default buckets, which suit batch intervals from 100 ms to a minute).
DELAY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
_BOUNDS_MS = tuple(b * 1000.0 for b in DELAY_BUCKETS)


@attrs.define(eq=False)
class _Histogram:
    """Cumulative-by-bucket counts of delays (ms), with their sum, over every batch."""

    counts: list[int] = attrs.field(factory=lambda: [0] * (len(DELAY_BUCKETS) + 1))
    total_ms: int = 0
    n: int = 0

    def observe(self, value_ms: int) -> None:
        self.counts[bisect.bisect_left(_BOUNDS_MS, value_ms)] += 1
        self.total_ms += value_ms
        self.n += 1

    def frozen(self) -> tuple[tuple[int, ...], int, int]:
        return tuple(self.counts), self.total_ms, self.n


@attrs.frozen
class Snapshot:
    """An immutable copy of a :class:`StreamingStore` at one :attr:`version`.

    Batches are :class:`ember.events.BatchInfo` objects as the hooks delivered them.

    :ivar version: the store's version when the snapshot was taken.
    :ivar app_id: the application id used in the API paths.
    :ivar app_name: the context's application name.
    :ivar master: the context's master URL.
    :ivar start_time: when the streaming context started (ms of its clock), or ``None``.
    :ivar stop_time: when it stopped (ms of its clock), or ``None`` while it runs.
    :ivar now: the streaming clock's time when the snapshot was taken (ms).
    :ivar batch_duration: the batch interval (ms), or ``None`` before the start.
    :ivar waiting: queued batches (submitted, not started), by batch time.
    :ivar running: batches being processed, by batch time.
    :ivar running_ops: the output operations of queued and running batches reported so
        far, by batch time then output operation id.
    :ivar completed: retained completed batches, oldest first.
    :ivar total_completed: every batch completed since the start (retained or not).
    :ivar total_failed: completed batches with a failed output operation.
    :ivar received_records: records of every submitted batch.
    :ivar processed_records: records of every completed batch.
    :ivar stream_records: per input stream id, records of every submitted batch.
    :ivar stream_names: per input stream id, a description of the stream.
    :ivar receivers: per input stream id, the latest :class:`~ember.events.ReceiverInfo`.
    :ivar job_ids: per ``(batch time, output operation id)``, the ids of its jobs.
    :ivar processing_hist: the processing-time histogram (counts, sum ms, n).
    :ivar scheduling_hist: the scheduling-delay histogram (counts, sum ms, n).
    :ivar total_hist: the total-delay histogram (counts, sum ms, n).
    """

    version: int
    app_id: str
    app_name: str
    master: str
    start_time: int | None
    stop_time: int | None
    now: int | None
    batch_duration: int | None
    waiting: dict[int, BatchInfo]
    running: dict[int, BatchInfo]
    running_ops: dict[int, dict[int, OutputOperationInfo]]
    completed: tuple[BatchInfo, ...]
    total_completed: int
    total_failed: int
    received_records: int
    processed_records: int
    stream_records: dict[int, int]
    stream_names: dict[int, str]
    receivers: dict[int, ReceiverInfo]
    job_ids: dict[tuple[int, int], tuple[int, ...]]
    processing_hist: tuple[tuple[int, ...], int, int]
    scheduling_hist: tuple[tuple[int, ...], int, int]
    total_hist: tuple[tuple[int, ...], int, int]

    def find_batch(self, batch_time: int) -> tuple[str, BatchInfo] | None:
        """The status (``QUEUED``, ``PROCESSING`` or ``COMPLETED``) and info of a batch."""
        if batch_time in self.running:
            return "PROCESSING", self.running[batch_time]
        if batch_time in self.waiting:
            return "QUEUED", self.waiting[batch_time]
        for info in reversed(self.completed):  # completion order: not always time order
            if info.batch_time == batch_time:
                return "COMPLETED", info
        return None


class StreamingStore:
    """The events of one streaming context, kept within fixed bounds (see the module doc).

    The ``on_*`` methods are called by the hooks; :meth:`snapshot` by the web server.

    :param retained: how many completed batches to keep (``ember.ui.retainedBatches``).
    :param app_id: the application id of the API paths.
    :param app_name: the application name.
    :param master: the master URL.
    """

    def __init__(self, retained: int, app_id: str, app_name: str = "ember",
                 master: str = "") -> None:
        if retained < 1:
            raise ValueError(f"ember.ui.retainedBatches must be at least 1, got {retained}")
        #: Held for microseconds by every hook and by :meth:`snapshot`.
        self.lock = threading.Lock()
        #: Bumped on every change; lets readers skip work when nothing happened.
        self.version = 0
        self.retained = retained
        self.app_id = app_id
        self.app_name = app_name
        self.master = master
        self.clock: Any = None
        self.start_time: int | None = None
        self.stop_time: int | None = None
        self.batch_duration: int | None = None
        self._waiting: dict[int, BatchInfo] = {}
        self._running: dict[int, BatchInfo] = {}
        self._running_ops: dict[int, dict[int, OutputOperationInfo]] = {}
        self._completed: collections.deque[BatchInfo] = collections.deque(maxlen=retained)
        self._total_completed = 0
        self._total_failed = 0
        self._received = 0
        self._processed = 0
        self._stream_records: dict[int, int] = {}
        self._stream_names: dict[int, str] = {}
        self._receivers: dict[int, ReceiverInfo] = {}
        self._job_ids: dict[tuple[int, int], tuple[int, ...]] = {}
        self._processing = _Histogram()
        self._scheduling = _Histogram()
        self._total = _Histogram()

    # ------------------------------------------------------------------ lifecycle facts
    def on_started(self, start_time: int, batch_duration: int, clock: Any) -> None:
        """The streaming context started at ``start_time`` (ms of ``clock``)."""
        with self.lock:
            self.start_time = start_time
            self.batch_duration = batch_duration
            self.clock = clock
            self.version += 1

    def on_stopped(self, stop_time: int | None) -> None:
        """The streaming context stopped."""
        with self.lock:
            self.stop_time = stop_time
            self.version += 1

    # ------------------------------------------------------------------ batches
    def on_batch_submitted(self, batch: BatchInfo) -> None:
        """A batch was queued: count its input."""
        with self.lock:
            self._waiting[batch.batch_time] = batch
            records = self._stream_records
            names = self._stream_names
            for stream_id, info in batch.stream_id_to_input_info.items():
                n = info.num_records
                self._received += n
                records[stream_id] = records.get(stream_id, 0) + n
                if stream_id not in names:
                    names[stream_id] = info.metadata.get("Description") or f"Stream-{stream_id}"
            self.version += 1

    def on_batch_started(self, batch: BatchInfo) -> None:
        """A batch's first output operation started."""
        with self.lock:
            self._waiting.pop(batch.batch_time, None)
            self._running[batch.batch_time] = batch
            self.version += 1

    def on_operation(self, op: OutputOperationInfo) -> None:
        """An output operation of an active batch started or completed."""
        with self.lock:
            ops = self._running_ops.get(op.batch_time)
            if ops is None:
                ops = self._running_ops[op.batch_time] = {}
            ops[op.id] = op
            self.version += 1

    def on_job(self, batch_time: int, op_id: int, job_id: int) -> None:
        """Job ``job_id`` ran for output operation ``op_id`` of batch ``batch_time``."""
        key = (batch_time, op_id)
        with self.lock:
            self._job_ids[key] = (*self._job_ids.get(key, ()), job_id)

    def on_batch_completed(self, batch: BatchInfo) -> None:
        """A batch completed (successfully or not)."""
        t = batch.batch_time
        start, end = batch.processing_start_time, batch.processing_end_time
        with self.lock:
            self._waiting.pop(t, None)
            self._running.pop(t, None)
            self._running_ops.pop(t, None)
            completed = self._completed
            if len(completed) == completed.maxlen:
                evicted = completed[0]
                for op_id in evicted.output_operation_infos:
                    self._job_ids.pop((evicted.batch_time, op_id), None)
            completed.append(batch)
            self._total_completed += 1
            if batch.failed:
                self._total_failed += 1
            for info in batch.stream_id_to_input_info.values():
                self._processed += info.num_records
            if start is not None:
                self._scheduling.observe(start - batch.submission_time)
                if end is not None:
                    self._processing.observe(end - start)
            if end is not None:
                self._total.observe(end - t)
            self.version += 1

    # ------------------------------------------------------------------ receivers
    def on_receiver(self, receiver: ReceiverInfo) -> None:
        """A receiver started, reported an error or stopped."""
        with self.lock:
            self._receivers[receiver.stream_id] = receiver
            self.version += 1

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> Snapshot:
        """An immutable copy of everything, for the web server's thread."""
        clock = self.clock
        now = clock.now_ms() if clock is not None else None
        with self.lock:
            return Snapshot(
                version=self.version,
                app_id=self.app_id,
                app_name=self.app_name,
                master=self.master,
                start_time=self.start_time,
                stop_time=self.stop_time,
                now=now if self.stop_time is None else self.stop_time,
                batch_duration=self.batch_duration,
                waiting=dict(self._waiting),
                running=dict(self._running),
                running_ops={t: dict(ops) for t, ops in self._running_ops.items()},
                completed=tuple(self._completed),
                total_completed=self._total_completed,
                total_failed=self._total_failed,
                received_records=self._received,
                processed_records=self._processed,
                stream_records=dict(self._stream_records),
                stream_names=dict(self._stream_names),
                receivers=dict(self._receivers),
                job_ids=dict(self._job_ids),
                processing_hist=self._processing.frozen(),
                scheduling_hist=self._scheduling.frozen(),
                total_hist=self._total.frozen(),
            )
