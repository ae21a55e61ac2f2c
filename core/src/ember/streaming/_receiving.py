"""Running receivers: the supervisor of each receiver, its rate limiter, and backpressure.

Each receiver runs on the driver under a :class:`ReceiverSupervisor`, which calls its
``onStart``/``onStop``, restarts it after errors (with a delay, never in a tight loop),
reports started / error / stopped to the hooks, limits its intake to
``ember.streaming.receiver.maxRate`` records a second, and — with
``ember.streaming.backpressure.enabled`` — adapts that rate after every batch to the rate at
which batches are processed (a PID controller), so a source faster than the processing does
not make memory grow without bound: ``store`` waits instead, and a TCP sender is slowed by
the socket's own flow control. Without backpressure memory stays bounded too: the supervisor
sets the tracker's budget (``ember.streaming.receiver.spillThreshold`` and ``maxMemory``) and
tells it the receiver's storage level, which decides between spilling blocks to disk and
holding the receiver back (see :mod:`ember.streaming._blocks`). With the write-ahead log on, each block is logged before it is
added to the tracker (:class:`~ember.streaming._logged_blocks.BlockLog`), so ``storeMany``
returns only once its block is logged.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

import attrs

from ember.events import ReceiverInfo
from ember.streaming._blocks import Block, BlockGenerator, ReceivedBlockTracker
from ember.streaming._logged_blocks import check_metadata

if TYPE_CHECKING:
    from ember.receivers import Receiver
    from ember.streaming._logged_blocks import BlockLog
    from ember.streaming.context import StreamingContext

__all__ = ["PIDRateEstimator", "RateLimiter", "ReceiverSupervisor"]

log = logging.getLogger("ember.streaming")

#: Defaults of ``ember.streaming.blockMaxBytes``, ``ember.streaming.receiver.spillThreshold``
#: and ``ember.streaming.receiver.maxMemory``.
DEFAULT_BLOCK_MAX_BYTES = 4 << 20
DEFAULT_SPILL_THRESHOLD = 4 << 20
DEFAULT_MAX_MEMORY = 128 << 20
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def parse_bytes(value: Any, key: str, default: int) -> int | None:
    """A size setting in bytes: a number, or a string such as ``"4m"``, ``"512k"``,
    ``"1g"`` (binary units, as Spark's sizes); ``0`` or a negative number is ``None`` (no
    bound); unset is ``default``."""
    if value is None:
        return default
    text = str(value).strip().lower()
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = text[len(number):].strip()
    try:
        if unit not in _UNITS:
            raise ValueError
        size = int(float(number) * _UNITS[unit])
    except ValueError:
        raise ValueError(
            f"configuration {key} must be a size in bytes such as 4194304, \"4m\" or "
            f"\"512k\", got {value!r}"
        ) from None
    return size if size > 0 else None


def _non_negative(conf: Any, key: str, default: float) -> float:
    value = conf.getFloat(key, default)
    value = default if value is None else value
    if value < 0:
        raise ValueError(f"configuration {key} must be >= 0, got {value!r}")
    return value


class RateLimiter:
    """A token bucket: ``acquire(n)`` waits until ``n`` more records fit within the rate."""

    def __init__(self, rate: float | None, stop: threading.Event) -> None:
        self._rate = rate if rate and rate > 0 else None
        self._stop = stop
        self._lock = threading.Lock()
        self._allowance = 0.0
        self._last = time.monotonic()

    @property
    def rate(self) -> float | None:
        """Records a second, ``None`` for no limit."""
        return self._rate

    def set_rate(self, rate: float | None) -> None:
        with self._lock:
            self._rate = rate if rate and rate > 0 else None

    def _accrue(self, rate: float) -> None:
        now = time.monotonic()
        burst = max(rate * 0.1, 1.0)  # never bank more than a tenth of a second of records
        self._allowance = min(self._allowance + (now - self._last) * rate, burst)
        self._last = now

    def acquire(self, n: int) -> None:
        """Take ``n`` records' worth of the rate, waiting as long as that needs.

        The wait follows rate changes as they happen (backpressure may raise the rate) and
        ends at once when the receiver stops.
        """
        if n <= 0:
            return
        with self._lock:
            rate = self._rate
            if rate is None:
                self._last = time.monotonic()
                return
            self._accrue(rate)
            self._allowance -= n
        while True:
            with self._lock:
                rate = self._rate
                if rate is None:
                    self._allowance = 0.0
                    return
                self._accrue(rate)
                if self._allowance >= 0:
                    return
                wait = -self._allowance / rate
            if self._stop.wait(min(wait, 0.05)):
                return


class PIDRateEstimator:
    """Estimates the records/s a stream can take from each finished batch.

    The error is the gap between the current rate and the measured processing rate; the
    integral term is the backlog (scheduling delay) expressed as a rate. Gains follow
    Spark's defaults (proportional 1.0, integral 0.2, derivative 0); the rate never drops
    below ``min_rate``.
    """

    def __init__(self, batch_ms: int, proportional: float = 1.0, integral: float = 0.2,
                 derivative: float = 0.0, min_rate: float = 100.0) -> None:
        self.batch_ms = batch_ms
        self.kp, self.ki, self.kd = proportional, integral, derivative
        self.min_rate = min_rate
        self._lock = threading.Lock()  # batches of concurrent jobs complete in several threads
        self._first = True
        self._latest_time = -1
        self._latest_rate = -1.0
        self._latest_error = -1.0

    def compute(self, time_ms: int, elements: int, processing_delay_ms: int,
                scheduling_delay_ms: int) -> float | None:
        """The new rate after batch ``time_ms``, or ``None`` when there is nothing to learn.

        The first estimate is the measured processing rate; later ones move the previous
        rate by the proportional, integral and derivative terms. Every estimate is at least
        ``min_rate``.
        """
        if elements <= 0 or processing_delay_ms <= 0:
            return None
        with self._lock:
            if time_ms <= self._latest_time:
                return None
            processing_rate = elements / processing_delay_ms * 1000.0
            if self._first:
                self._first = False
                error = 0.0  # no earlier rate to compare with: no derivative on the next batch
                new_rate = max(processing_rate, self.min_rate)
            else:
                since = (time_ms - self._latest_time) / 1000.0
                error = self._latest_rate - processing_rate
                historical_error = scheduling_delay_ms * processing_rate / self.batch_ms
                d_error = (error - self._latest_error) / since
                new_rate = max(
                    self._latest_rate - self.kp * error - self.ki * historical_error
                    - self.kd * d_error,
                    self.min_rate,
                )
            self._latest_time = time_ms
            self._latest_rate = new_rate
            self._latest_error = error
            return new_rate


class ReceiverSupervisor:
    """Runs one receiver: start, store, restart, stop, report — see the module docstring."""

    def __init__(self, ssc: StreamingContext, receiver: Receiver, stream_id: int,
                 tracker: ReceivedBlockTracker, block_log: BlockLog | None = None) -> None:
        conf = ssc.sparkContext._conf
        self.ssc = ssc
        self.receiver = receiver
        self.stream_id = stream_id
        self.tracker = tracker
        self.block_log = block_log
        if block_log is not None:
            block_log.on_error = self._log_failed
        self.hooks = ssc.sparkContext._hooks
        self.restart_delay = conf.getDuration("ember.streaming.receiverRestartDelay", 2.0) or 0.0
        self.max_rate = conf.getFloat("ember.streaming.receiver.maxRate", 0.0) or None
        self._stopped = threading.Event()
        self._stopped.set()
        self._final = threading.Event()  # set once stopped for good
        self._lock = threading.RLock()
        self.limiter = RateLimiter(self.max_rate, self._final)
        self.estimator: PIDRateEstimator | None = None
        if conf.getBoolean("ember.streaming.backpressure.enabled", False):
            self.estimator = PIDRateEstimator(
                ssc._batch_ms,
                proportional=_non_negative(conf, "ember.streaming.backpressure.pid.proportional",
                                           1.0),
                integral=_non_negative(conf, "ember.streaming.backpressure.pid.integral", 0.2),
                derivative=_non_negative(conf, "ember.streaming.backpressure.pid.derived", 0.0),
                min_rate=conf.getFloat("ember.streaming.backpressure.pid.minRate", 100.0) or 100.0,
            )
            initial = conf.getFloat("ember.streaming.backpressure.initialRate", 0.0) or None
            if initial:
                self.limiter.set_rate(min(initial, self.max_rate or initial))
        block_s = conf.getDuration("ember.streaming.blockInterval", 0.2) or 0.2
        block_max = parse_bytes(conf.get("ember.streaming.blockMaxBytes", None),
                                "ember.streaming.blockMaxBytes", DEFAULT_BLOCK_MAX_BYTES)
        self.generator = BlockGenerator(stream_id, block_s, tracker,
                                        ssc.sparkContext._serializer_or_none(),
                                        self._store_generated_block, block_max,
                                        tracker.add_text if block_log is None else None)
        spill_above = parse_bytes(conf.get("ember.streaming.receiver.spillThreshold", None),
                                  "ember.streaming.receiver.spillThreshold",
                                  DEFAULT_SPILL_THRESHOLD)
        max_memory = parse_bytes(conf.get("ember.streaming.receiver.maxMemory", None),
                                 "ember.streaming.receiver.maxMemory", DEFAULT_MAX_MEMORY)
        tracker.configure(spill_above, max_memory,
                          os.path.join(ssc.sparkContext._local_dir, "received-blocks"))
        level = getattr(receiver, "storageLevel", None)
        self._memory_only = not getattr(level, "useDisk", True)
        #: Bytes of generated blocks that may wait for the write-ahead log's writer.
        self._log_backlog = 2 * (block_max or DEFAULT_BLOCK_MAX_BYTES)
        self._log_submitted = 0
        self._log_base: int | None = None
        tracker.set_policy(stream_id, bool(getattr(level, "useDisk", True)), self._final.is_set,
                           bool(getattr(level, "useMemory", True)))
        self.records_received = 0
        self.last_error: tuple[str, str, int] | None = None
        self._restarting = False
        self._restart_thread: threading.Thread | None = None
        self._stop_thread: threading.Thread | None = None
        self._reported_stopped = False
        self._on_stop_thread: int | None = None  # the thread running receiver.onStop()

    # ------------------------------------------------------------------ info
    def info(self, active: bool) -> ReceiverInfo:
        msg, text, when = self.last_error or ("", "", -1)
        return ReceiverInfo(self.stream_id, self.receiver.name(), active,
                            last_error_message=msg, last_error=text, last_error_time=when)

    def is_started(self) -> bool:
        return not self._stopped.is_set()

    def is_stopped(self) -> bool:
        return self._stopped.is_set()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.receiver._supervisor = self
        self.receiver._stream_id = self.stream_id
        self._final.clear()
        self.generator.start()
        self._start_receiver()

    def _start_receiver(self) -> bool:
        failure: Exception | None = None
        with self._lock:
            if self._final.is_set():
                return False
            self._stopped.clear()
            try:
                self.receiver.onStart()
            except Exception as exc:
                self._stopped.set()
                failure = exc
        if failure is not None:
            # onStop releases whatever the failed onStart made before raising (a thread, a
            # socket); called outside the lock, as it may join a thread that restarts.
            try:
                self.receiver.onStop()
            except Exception as exc:
                log.warning("receiver %s for stream %d: onStop after a failed onStart failed",
                            self.receiver.name(), self.stream_id, exc_info=exc)
            self._record_error(f"{self.receiver.name()}.onStart failed", failure)
            self._schedule_restart(f"onStart failed: {failure}", None)
            return False
        log.info("receiver %s for stream %d started", self.receiver.name(), self.stream_id)
        self.hooks.receiver_started(self.info(True))
        return True

    def _stop_receiver(self) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
        # onStop may store what the receiver still buffers, also during the final stop.
        self._on_stop_thread = threading.get_ident()
        try:
            self.receiver.onStop()
        except Exception as exc:
            self._record_error(f"{self.receiver.name()}.onStop failed", exc)
        finally:
            self._on_stop_thread = None

    def stop(self) -> None:
        """Stop for good (context stop): the receiver, then the block generator's flush."""
        self._final.set()
        self._stop_receiver()
        for thread in (self._restart_thread, self._stop_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join()
        self.generator.stop()
        if self.block_log is not None:
            self.block_log.close()
        self._report_stopped()

    def _report_stopped(self) -> None:
        """Tell the hooks the receiver stopped for good, once."""
        with self._lock:
            if self._reported_stopped:
                return
            self._reported_stopped = True
        self.hooks.receiver_stopped(self.info(False))
        log.info("receiver %s for stream %d stopped", self.receiver.name(), self.stream_id)

    def stop_receiver(self, message: str, error: BaseException | None) -> None:
        """The receiver asked to stop for good: ``onStop`` (in another thread, since the
        receiver's own thread usually asks, and ``onStop`` may join it), then the hooks."""
        if error is not None:
            self._record_error(message, error)
        else:
            log.info("receiver %s for stream %d stops: %s", self.receiver.name(),
                     self.stream_id, message)
        with self._lock:
            if self._final.is_set():
                return
            self._final.set()

        def run() -> None:
            self._stop_receiver()
            self._report_stopped()

        self._stop_thread = threading.Thread(target=run, daemon=True,
                                             name=f"ember-receiver-stop-{self.stream_id}")
        self._stop_thread.start()

    def restart(self, message: str, error: BaseException | None, delay: float | None) -> None:
        self._record_error(message, error)
        self._schedule_restart(message, delay)

    def _schedule_restart(self, message: str, delay: float | None) -> None:
        with self._lock:
            if self._restarting or self._final.is_set():
                return
            self._restarting = True
        wait = self.restart_delay if delay is None else delay

        def run() -> None:
            try:
                self._stop_receiver()
                log.warning("restarting receiver %s for stream %d in %.1f s: %s",
                            self.receiver.name(), self.stream_id, wait, message)
                stopping = self._final.wait(wait)
            finally:
                with self._lock:
                    self._restarting = False
            # Not under ``_restarting``: an onStart that fails again schedules the next
            # restart itself, and that one must not be cleared by this one ending.
            if not stopping:
                self._start_receiver()

        self._restart_thread = threading.Thread(
            target=run, name=f"ember-receiver-restart-{self.stream_id}", daemon=True
        )
        self._restart_thread.start()

    def report_error(self, message: str, error: BaseException | None) -> None:
        self._record_error(message, error)

    def _record_error(self, message: str, error: BaseException | None) -> None:
        text = message
        if error is not None:
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            text = f"{message}\n{text}"
        self.last_error = (message, text, self.ssc.clock.now_ms())
        log.warning("receiver %s for stream %d: %s", self.receiver.name(), self.stream_id,
                    message, exc_info=error)
        self.hooks.receiver_error(self.info(not self._stopped.is_set()))

    # ------------------------------------------------------------------ data
    def _check_open(self) -> None:
        if (self._final.is_set() and self._stopped.is_set()
                and self._on_stop_thread != threading.get_ident()):
            raise RuntimeError(
                f"receiver {self.receiver.name()} is stopped: data can no longer be stored"
            )

    def push_single(self, record: Any) -> None:
        self._check_open()
        self.limiter.acquire(1)
        self.records_received += 1
        self.generator.add_record(record)

    def push_many(self, records: list[Any], metadata: Any = None) -> None:
        self._check_open()
        if not records:
            return
        check_metadata(metadata)
        self.limiter.acquire(len(records))
        self.records_received += len(records)
        block = self.generator.make_records_block(records)
        if metadata is not None:
            block = attrs.evolve(block, metadata=metadata)
        self._store_block(block)

    def last_stored_metadata(self) -> Any:
        """The metadata of the last block stored with some (see ``Receiver.lastStoredMetadata``)."""
        return self.tracker.last_metadata(self.stream_id)

    def push_bytes(self, data: bytes) -> None:
        self._check_open()
        if not data:
            return
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        self.limiter.acquire(lines)
        self.records_received += lines
        self.generator.add_text(data if data.endswith(b"\n") else data + b"\n", lines)

    def _store_block(self, block: Block) -> None:
        if self.block_log is None:
            self.tracker.add(block)
        else:
            self.block_log.store(block)

    def _store_generated_block(self, block: Block) -> None:
        """A block cut by the generator (``store``/``storeBytes`` data): logged by the log's
        writer thread, so the generator keeps its pace while the disk works — except for a
        memory-only receiver, whose block is logged and stored in this thread, so that
        waiting for memory holds the receiver back rather than queueing blocks."""
        if self.block_log is None:
            self.tracker.add(block)
        elif self._memory_only:
            self.block_log.store(block)
        else:
            # The writer may fall behind a fast source: once more than the log backlog waits
            # for it, hold the generator (and so the receiver) back until it catches up.
            size = len(block.payload)
            if self._log_base is None:
                self._log_base = self.tracker.added_bytes(self.stream_id)
            self._log_submitted += size
            self.block_log.submit(block)
            self.tracker.wait_added(self.stream_id,
                                    self._log_base + self._log_submitted - self._log_backlog,
                                    self._final.is_set)

    def _log_failed(self, block: Block, error: BaseException) -> None:
        self._record_error(
            f"writing a block of {block.num_records} records to the write-ahead log failed; "
            f"the block is kept in memory only (lost if the driver fails)", error)

    # ------------------------------------------------------------------ backpressure
    def on_batch_completed(self, time_ms: int, elements: int, processing_ms: int,
                           scheduling_ms: int) -> None:
        if self.estimator is None:
            return
        rate = self.estimator.compute(time_ms, elements, processing_ms, scheduling_ms)
        if rate is not None:
            if self.max_rate:
                rate = min(rate, self.max_rate)
            self.limiter.set_rate(rate)
            log.debug("stream %d: rate set to %.0f records/s", self.stream_id, rate)
