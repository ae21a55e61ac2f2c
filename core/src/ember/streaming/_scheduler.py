"""The streaming scheduler: generates a batch every interval and runs its jobs.

Policy
------
- One *generator* thread waits on the clock for each batch time ``t`` (a multiple of the
  batch interval), asks the DStream graph for the batch's RDDs and jobs (one per output
  operation, in definition order), records the batch's input, and queues the batch.
- Jobs run on a pool of ``ember.streaming.concurrentJobs`` threads (default 1: batches run
  one after the other, and the jobs of a batch in definition order). A batch that falls
  behind waits in the queue; it is never skipped, and its scheduling delay shows it.
- When a batch's last job ends, listeners get ``batch_completed`` and a log line reports the
  delays; the generator then forgets RDDs older than the streams' remember durations.

Errors
------
- An output operation that raises is reported to listeners (``failure_reason``) and the
  log, and becomes the error ``awaitTermination`` raises; later batches still run.
- An error while *generating* a batch (a ``transform`` function raising) is handled the same
  way; that batch has no jobs.

Stopping
--------
- ``stop(graceful=False)``: stop generating, drop queued batches that have not started, wait
  for the running job to end (a Python thread cannot be interrupted).
- ``stop(graceful=True)``: stop the receivers (their buffered records become blocks), put
  every received block into a batch — at the following batch times, without waiting for
  the clock — then run every queued batch to its end.

Receivers are stopped first in both cases; with ``graceful=False`` blocks not yet in a
batch are dropped. Called from inside a job (a ``foreachRDD`` function), stop cannot wait
for that job: :meth:`StreamingContext.stop` then finishes stopping in a background thread
once the job has returned, so its batch still completes and reaches the listeners.
"""

from __future__ import annotations

import logging
import threading
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import attrs

from ember.events import BatchInfo, OutputOperationInfo, StreamInputInfo
from ember.streaming._blocks import ReceivedBlockTracker

if TYPE_CHECKING:
    from ember.streaming._dstreams import Job
    from ember.streaming.context import StreamingContext

__all__ = ["JobScheduler"]

log = logging.getLogger("ember.streaming")


@attrs.define(eq=False)
class _Batch:
    time_ms: int
    jobs: list[Job]
    info: BatchInfo
    remaining: int
    started: bool = False
    futures: list[Future] = attrs.field(factory=list)


class JobScheduler:
    """Generates and runs the batches of one StreamingContext."""

    def __init__(self, ssc: StreamingContext) -> None:
        self.ssc = ssc
        self.clock = ssc._clock
        self.graph = ssc._graph
        self.hooks = ssc.sparkContext._hooks
        self.batch_ms = ssc._batch_ms
        conf = ssc.sparkContext._conf
        self.concurrent_jobs = max(1, conf.getInt("ember.streaming.concurrentJobs", 1) or 1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._inputs: dict[int, dict[int, StreamInputInfo]] = {}
        self._batches: dict[int, _Batch] = {}
        self._completed: list[int] = []
        self._last_completed_ms: int | None = None
        self._last_generated_ms: int | None = None
        self._to_clear: list[int] = []
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._job_threads: set[int] = set()
        self._draining = False
        self._dropping = False  # a prompt stop: jobs that have not started are skipped
        self.tracker = ReceivedBlockTracker()
        self.start_ms: int | None = None
        self._restart_times: list[int] = []
        self._writer: Any = None
        # Checkpoints: _graph_lock makes a snapshot of the graph, its sources and the
        # pending batches consistent (no batch half generated, no RDD half forgotten);
        # _checkpoint_lock makes checkpoints reach the disk in the order they were taken,
        # so the last one written describes the live graph (see CheckpointWriter._rotate).
        self._graph_lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        if ssc._checkpoint_dir is not None and getattr(ssc, "_metadata_checkpoints", True):
            from ember.streaming._checkpoint import CheckpointWriter

            gens = conf.getInt("ember.streaming.checkpoint.generations", 5) or 5
            self._writer = CheckpointWriter(ssc._checkpoint_dir, gens)

    def _receiver_streams(self) -> list[Any]:
        from ember.streaming._dstreams import ReceiverInputDStream

        return [s for s in self.graph.inputs if isinstance(s, ReceiverInputDStream)]

    # ------------------------------------------------------------------ lifecycle
    def start(self, restart: Any = None) -> int:
        """Start generating; returns the time of the first batch.

        :param restart: the checkpoint a recovered context resumes from: its pending
            batches, and every batch time between it and now, are generated first.
        """
        now = self.clock.now_ms()
        if restart is None:
            self.start_ms = (now // self.batch_ms + 1) * self.batch_ms
            self.graph.start(self.start_ms - self.batch_ms)
        else:
            aligned = (now // self.batch_ms) * self.batch_ms
            down = range(restart.time_ms + self.batch_ms, aligned + 1, self.batch_ms)
            self._restart_times = sorted(set(restart.pending_ms) | set(down))
            last = max([restart.time_ms, *self._restart_times])
            self.start_ms = last + self.batch_ms
            self._last_completed_ms = restart.last_completed_ms
            self.graph.start(self.graph.zero_ms)
            log.info("recovering from the checkpoint of batch %d ms: re-running batches %s",
                     restart.time_ms, self._restart_times)
        for stream in self.graph.inputs:
            stream._start()
        self._pool = ThreadPoolExecutor(self.concurrent_jobs,
                                        thread_name_prefix="ember-streaming-job")
        self._thread = threading.Thread(target=self._generate_loop, name="ember-job-generator",
                                        daemon=True)
        self._thread.start()
        receivers = [s for s in self._receiver_streams() if s.supervisor is not None]
        slots = self.ssc.sparkContext.defaultParallelism
        if receivers and slots < len(receivers) + 1:
            log.warning(
                "%d receiver(s) and %d worker slot(s) (master %r): give the application more "
                "slots than receivers (local[n] with n > number of receivers), or received "
                "data may not be processed as fast as it arrives",
                len(receivers), slots, self.ssc.sparkContext.master,
            )
        return self.start_ms

    def in_job(self) -> bool:
        """Whether the calling thread is one of the threads that run jobs."""
        return threading.get_ident() in self._job_threads

    def wait_for_jobs(self) -> None:
        """Block until every job still running or queued (after :meth:`stop`) has ended."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def stop(self, graceful: bool) -> None:
        """Stop generating batches, then finish or drop the queued ones (see module doc)."""
        if not graceful:
            self.drop_queued()
        for stream in self._receiver_streams():
            try:
                stream._stop_receiving()
            except Exception:
                log.exception("stopping the receiver of %r failed", stream)
        self._draining = graceful
        self._stop.set()
        wake = getattr(self.clock, "wake", None)
        if wake is not None:
            wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if not graceful:
            self._cancel_queued()
        if self._pool is not None:
            inside = threading.get_ident() in self._job_threads
            self._pool.shutdown(wait=not inside, cancel_futures=not graceful)
        for stream in self.graph.inputs:
            try:
                stream._stop()
            except Exception:
                log.exception("stopping input stream %r failed", stream)

    def drop_queued(self) -> None:
        """The first step of a prompt stop: no queued job starts from now on."""
        self._dropping = True
        self._cancel_queued()

    def _cancel_queued(self) -> None:
        with self._lock:
            for batch in self._batches.values():
                for f in batch.futures:
                    f.cancel()

    # ------------------------------------------------------------------ inputs
    def report_input(self, time_ms: int, info: StreamInputInfo) -> None:
        """Record what an input stream contributed to batch ``time_ms``."""
        with self._lock:
            self._inputs.setdefault(time_ms, {})[info.input_stream_id] = info

    # ------------------------------------------------------------------ generating
    def _generate_loop(self) -> None:
        for t in self._restart_times:
            if self._stop.is_set():
                break
            self._clear_old()
            self._generate(t)
        t = self.start_ms
        assert t is not None
        while self.clock.wait_until(t, self._stop):
            self._clear_old()
            self._generate(t)
            t += self.batch_ms
        if self._draining:  # graceful stop: every received block goes into a batch
            while self.tracker.has_unallocated():
                self._clear_old()
                self._generate(t)
                t += self.batch_ms
        self._clear_old()

    def _clear_old(self) -> None:
        with self._lock:
            times, self._to_clear = self._to_clear, []
        for t in times:
            try:
                with self._graph_lock:
                    self.graph.clear_metadata(t)
            except Exception:
                log.exception("clearing metadata of batch %d ms failed", t)

    def _generate(self, time_ms: int) -> None:
        try:
            with self._graph_lock:
                jobs = self.graph.generate_jobs(time_ms)
            error = None
        except Exception as exc:
            jobs, error = [], exc
        with self._lock:
            inputs = self._inputs.pop(time_ms, {})
        now = self.clock.now_ms()
        ops = {
            j.output_id: OutputOperationInfo(time_ms, j.output_id, j.name, j.description)
            for j in jobs
        }
        info = BatchInfo(time_ms, inputs, now, output_operation_infos=ops)
        self._last_generated_ms = time_ms
        if error is not None:
            log.error("generating the jobs of batch %d ms failed", time_ms, exc_info=error)
            self.ssc._report_error(error)
        batch = _Batch(time_ms, jobs, info, len(jobs))
        self.hooks.batch_submitted(info)
        if not jobs:
            info = attrs.evolve(info, processing_start_time=now, processing_end_time=now)
            batch.info = info
            self.hooks.batch_started(info)
            self._finish(batch)
            return
        with self._lock:
            self._batches[time_ms] = batch
        self.write_checkpoint(time_ms)
        assert self._pool is not None
        for job in jobs:
            try:
                batch.futures.append(self._pool.submit(self._run_job, batch, job))
            except RuntimeError:  # the pool is shutting down
                break

    # ------------------------------------------------------------------ running
    def _run_job(self, batch: _Batch, job: Job) -> None:
        if self._dropping:  # stopped promptly after this job was queued: it is dropped
            return
        self._job_threads.add(threading.get_ident())
        now = self.clock.now_ms()
        with self._lock:
            first = not batch.started
            batch.started = True
            if first:
                batch.info = attrs.evolve(batch.info, processing_start_time=now)
            info = batch.info
        if first:
            self.hooks.batch_started(info)
        op = attrs.evolve(info.output_operation_infos[job.output_id], start_time=now)
        self.hooks.output_operation_started(op)
        failure = None
        try:
            job.run()
        except BaseException as exc:
            failure = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            log.error("output operation %d (%s) of batch %d ms failed:\n%s",
                      job.output_id, job.description, job.time_ms, failure)
            self.ssc._report_error(exc)
        op = attrs.evolve(op, end_time=self.clock.now_ms(), failure_reason=failure)
        self.hooks.output_operation_completed(op)
        with self._lock:
            ops = dict(batch.info.output_operation_infos)
            ops[job.output_id] = op
            batch.info = attrs.evolve(batch.info, output_operation_infos=ops)
            batch.remaining -= 1
            last = batch.remaining == 0
            if last:
                batch.info = attrs.evolve(batch.info, processing_end_time=self.clock.now_ms())
                self._batches.pop(batch.time_ms, None)
        if last:
            self._finish(batch)

    def _finish(self, batch: _Batch) -> None:
        info = batch.info
        self.hooks.batch_completed(info)
        for stream in self._receiver_streams():
            sup = stream.supervisor
            got = info.stream_id_to_input_info.get(stream.id)
            if sup is not None and got is not None:
                sup.on_batch_completed(info.batch_time, got.num_records,
                                       info.processingDelay() or 0, info.schedulingDelay() or 0)
        log.info(
            "Finished batch %d ms: total delay %.3f s (scheduling %.3f s, processing %.3f s), "
            "%d records%s",
            info.batch_time, (info.totalDelay() or 0) / 1000, (info.schedulingDelay() or 0) / 1000,
            (info.processingDelay() or 0) / 1000, info.numRecords(),
            ", FAILED" if info.failed else "",
        )
        with self._done:
            if self._last_completed_ms is None or info.batch_time > self._last_completed_ms:
                self._last_completed_ms = info.batch_time
            self._to_clear.append(info.batch_time)
        self.write_checkpoint(info.batch_time)
        with self._done:
            self._done.notify_all()

    # ------------------------------------------------------------------ checkpoints
    def write_checkpoint(self, time_ms: int) -> None:
        """Save the metadata checkpoint of batch ``time_ms`` (when a directory is set).

        A graph that cannot be pickled turns metadata checkpoints off with one warning: the
        stream runs on, but cannot be recovered with ``getOrCreate``.
        """
        with self._checkpoint_lock:
            self._write_checkpoint(time_ms)

    def _write_checkpoint(self, time_ms: int) -> None:
        writer = self._writer
        if writer is None:
            return
        from ember.streaming._checkpoint import Checkpoint, dump_graph
        from ember.streaming._dstreams import PullInputDStream

        try:
            with self._graph_lock:
                with self._lock:
                    pending = tuple(sorted(self._batches))
                    last = self._last_completed_ms
                blob, dirs = dump_graph(self.graph)
                states = {s.id: s.source.snapshot() for s in self.graph.inputs
                          if isinstance(s, PullInputDStream)}
                for out in self.graph.outputs:
                    dirs |= out._saved_dirs()
                received = self._received_block_states()
        except Exception as exc:
            self._writer = None
            log.warning(
                "metadata checkpoints are off: the streaming graph cannot be saved (%s: %s). "
                "The stream runs on, but cannot be recovered with getOrCreate after a driver "
                "failure; make every function given to DStream operations picklable (and "
                "do not use queueStream) to enable recovery", type(exc).__name__, exc,
            )
            return
        cp = Checkpoint(time_ms, self.ssc.sparkContext._conf.getAll(), self.batch_ms,
                        self.graph.zero_ms or 0, pending, last, blob, states,
                        tuple(sorted(dirs)), self.ssc._fingerprint, received)
        try:
            path = writer.write(cp)
        except OSError as exc:
            log.error("writing the checkpoint of batch %d ms failed: %s", time_ms, exc)
            return
        for stream in self._receiver_streams():  # the logs may now drop what none needs
            if stream.id in received:
                stream.supervisor.block_log.checkpoint_written(received[stream.id])
        from ember.events import CheckpointInfo

        self.hooks.checkpoint_written(CheckpointInfo(path, time_ms))

    def _received_block_states(self) -> dict[int, Any]:
        """The blocks of each receiver stream with a write-ahead log, by log handle."""
        return {s.id: self.tracker.snapshot(s.id) for s in self._receiver_streams()
                if s.supervisor is not None and s.supervisor.block_log is not None}

    # ------------------------------------------------------------------ waiting
    @property
    def last_completed_ms(self) -> int | None:
        """The time of the latest completed batch."""
        return self._last_completed_ms

    def pending_batches(self) -> int:
        """Batches generated and not yet completed."""
        with self._lock:
            return len(self._batches)

    def wait_for_batch(self, time_ms: int, timeout: float | None) -> bool:
        """Block until batch ``time_ms`` (and every earlier one) completed; ``False`` on timeout."""
        with self._done:
            return self._done.wait_for(
                lambda: ((self._last_completed_ms or -1) >= time_ms and not any(
                    t <= time_ms for t in self._batches
                )) or (self._stop.is_set() and not self._batches),
                timeout,
            )
