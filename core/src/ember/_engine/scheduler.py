"""The job scheduler: turns an action on an RDD into stages and runs their tasks.

Policy
------
- A job computes some partitions of one RDD with a result function. Its lineage is cut into
  *stages* at shuffle boundaries: narrow transformations are already fused (see
  ``PipelinedRDD``) into one function per partition, so a stage is that function plus either
  a shuffle write (``shuffle-map`` stages) or the result function (the ``result`` stage).
- Shuffle-map stages run before the stages that read them; those that do not depend on one
  another run together. A shuffle already computed (by an earlier job) is not recomputed, and
  neither is the lineage under a persisted RDD whose blocks all exist, or a checkpointed one.
- Each stage function is serialized once (cloudpickle) and sent to a worker only with the
  first task of the stage that worker runs; stage keys are content hashes, so the same
  pipeline in the next streaming batch reuses the function the worker already has.
- At most ``_IN_FLIGHT`` tasks wait on one slot, so a fast worker takes more of the tasks.
  A task reading a block cached in one worker's memory goes to that worker (it would
  recompute the block anywhere else): while that slot is full, other pending tasks are
  placed first, and the task runs elsewhere only after ``_LOCALITY_WAIT`` seconds without a
  local launch (Spark's delay scheduling, ``spark.locality.wait``).

Failures
--------
- A task that raises is retried up to ``ember.task.maxFailures`` attempts (default 4); then
  the job fails with the user's own exception (type, message), its ``__cause__`` holding the
  remote traceback text (:class:`ember.errors.RemoteTraceback`).
- A worker that dies (even by SIGKILL) fails its in-flight tasks with ``WorkerLostError``;
  they are resubmitted (counting as failed attempts) and the slot gets a new process. Its
  cached memory blocks are forgotten; shuffle outputs it wrote are files and survive.
- A reduce task that cannot read a map output (``FetchFailed``) makes the scheduler forget
  that output and rerun the map task before retrying the reduce stage. When the failure
  names the output's ``location`` (a dead worker holding map outputs in its memory), every
  map output at that location is forgotten and rerun at once.

Invariants: results are returned in partition order; accumulator updates of a task are
merged exactly once, from its first successful attempt; a job that fails leaves no task of
its own running when ``run_job`` returns... except tasks already running in a worker, whose
results are ignored.
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any

import attrs
import cloudpickle

from ember._callsite import callsite
from ember._engine import worker
from ember._engine.serialization import explain_unpicklable
from ember._engine.shuffle import FetchFailed, write_shuffle
from ember.accumulators import merge_updates
from ember.errors import RemoteTraceback, SerializationError, TaskError, WorkerLostError
from ember.events import JobInfo, StageInfo, TaskInfo

if TYPE_CHECKING:
    from ember.context import Context
    from ember.rdd import RDD

__all__ = ["Scheduler"]

_IN_FLIGHT = 2
_LOCALITY_WAIT = 3.0
_MAX_FETCH_RETRIES = 4


@attrs.frozen
class MapTaskSplit:
    """The split of a shuffle-map task: the parent's split plus the shuffle it writes."""

    index: int
    shuffle_id: int
    inner: Any


class _ResultStageFn:
    def __init__(self, compute: Callable[[Any], Iterator[Any]], func: Callable) -> None:
        self.compute = compute
        self.func = func

    def __call__(self, split: Any, task: worker.TaskContext) -> Any:
        return self.func(split.index, self.compute(split))


class _MapStageFn:
    def __init__(self, compute: Callable[[Any], Iterator[Any]], spec: Any) -> None:
        self.compute = compute
        self.spec = spec

    def __call__(self, split: MapTaskSplit, task: worker.TaskContext) -> Any:
        spec = attrs.evolve(self.spec, shuffle_id=split.shuffle_id)
        return write_shuffle(self.compute(split.inner), spec, split.index, task.attempt)


@attrs.define(eq=False)
class _Stage:
    stage_id: int
    kind: str
    name: str
    fn: Callable[..., Any]
    key: str
    blob: bytes | None
    splits: dict[int, Any]
    shuffled: Any = None  # the ShuffledRDD a map stage writes for
    results: dict[int, Any] = attrs.field(factory=dict)
    info: StageInfo | None = None


@attrs.define(eq=False)
class _Task:
    stage: _Stage
    partition: int
    attempt: int = 0
    slot: int | None = None
    info: TaskInfo | None = None
    preferred: int | None = None  # the slot holding the block it reads in memory


def _preferred_block(split: Any, depth: int = 0) -> str | None:
    """The cached block a task would rather read locally: its own, or its first input's."""
    block = getattr(split, "block_id", None)
    if block is not None or depth > 6:
        return block
    inner = getattr(split, "inner", None)
    if inner is None:
        inners = getattr(split, "inners", None)
        inner = inners[0] if inners else None
    return None if inner is None else _preferred_block(inner, depth + 1)


class _FetchFailure(Exception):
    def __init__(self, failure: FetchFailed) -> None:
        self.failure = failure
        super().__init__(str(failure))


class Scheduler:
    """Runs jobs for one :class:`~ember.Context`; safe to call from several threads."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.executor = ctx._executor
        self.hooks = ctx._hooks
        max_failures = ctx._conf.getInt("ember.task.maxFailures")
        if max_failures is None:
            max_failures = 4
        if max_failures < 1:
            raise ValueError(
                f"configuration ember.task.maxFailures must be at least 1 (the number of "
                f"attempts a task gets), got {max_failures}"
            )
        self.max_failures = max_failures
        self._lock = threading.Lock()
        self._job_ids = itertools.count()
        self._stage_ids = itertools.count()
        n = self.executor.num_slots
        self._slot_stages: list[set[str]] = [set() for _ in range(n)]
        self._slot_pid: list[int | None] = [None] * n
        self._inflight = [0] * n

    # ------------------------------------------------------------------ public entry point
    def run_job(
        self,
        rdd: RDD,
        func: Callable[[int, Iterator[Any]], Any],
        partitions: list[int] | None = None,
        action: str = "job",
    ) -> list[Any]:
        """Compute ``func(index, records)`` for each partition; results in partition order."""
        if partitions is None:
            partitions = list(range(rdd.getNumPartitions()))
        job_id = next(self._job_ids)
        job = JobInfo(job_id, callsite(action), (), time.time())
        self.hooks.job_started(job)
        stage_ids: list[int] = []
        try:
            results = self._run(rdd, func, partitions, job_id, stage_ids)
        except BaseException as exc:
            self.hooks.job_completed(
                attrs.evolve(job, stage_ids=tuple(stage_ids), completion_time=time.time(),
                             error=f"{type(exc).__name__}: {exc}")
            )
            raise
        self.hooks.job_completed(
            attrs.evolve(job, stage_ids=tuple(stage_ids), completion_time=time.time())
        )
        self.ctx._after_job(rdd)
        return results

    # ------------------------------------------------------------------ planning
    def _run(self, rdd: RDD, func: Callable, partitions: list[int], job_id: int,
             stage_ids: list[int]) -> list[Any]:
        results: dict[int, Any] = {}
        failure: FetchFailed | None = None
        for _ in range(_MAX_FETCH_RETRIES + 1):
            try:
                for level in self._missing_map_levels(rdd):
                    stages = [self._map_stage(s, job_id) for s in level]
                    stage_ids.extend(s.stage_id for s in stages)
                    self._run_stages(stages)
                todo = [p for p in partitions if p not in results]
                if todo:
                    splits = rdd._splits()
                    stage = self._make_stage(
                        "result", repr(rdd), _ResultStageFn(rdd._compute(), func),
                        {p: splits[p] for p in todo}, job_id,
                    )
                    stage_ids.append(stage.stage_id)
                    stage.results = results
                    self._run_stages([stage])
                return [results[p] for p in partitions]
            except _FetchFailure as ff:
                failure = ff.failure
                self.ctx._forget_map_output(failure.shuffle_id, failure.map_id,
                                            failure.location)
        assert failure is not None
        raise failure  # map outputs vanished again and again

    def _missing_map_levels(self, rdd: RDD) -> list[list[Any]]:
        """The uncomputed shuffles under ``rdd``, grouped so each group's inputs are ready."""
        depth: dict[int, int] = {}
        shuffles: dict[int, Any] = {}

        def visit(r: RDD) -> int:
            best = -1
            for s in r._missing_shuffles():
                key = id(s)
                if key not in depth:
                    shuffles[key] = s
                    depth[key] = visit(s._prev) + 1
                best = max(best, depth[key])
            return best

        visit(rdd)
        levels: dict[int, list[Any]] = {}
        for key, d in depth.items():
            levels.setdefault(d, []).append(shuffles[key])
        return [levels[d] for d in sorted(levels)]

    def _map_stage(self, shuffled: Any, job_id: int) -> _Stage:
        prev = shuffled._prev
        splits = prev._splits()
        missing = shuffled._missing_map_ids()
        stage = self._make_stage(
            "shuffle-map", repr(shuffled), _MapStageFn(prev._compute(), shuffled._spec()),
            {i: MapTaskSplit(i, shuffled.shuffle_id, splits[i]) for i in missing}, job_id,
        )
        stage.shuffled = shuffled
        return stage

    def _make_stage(self, kind: str, name: str, fn: Callable, splits: dict[int, Any],
                    job_id: int) -> _Stage:
        stage_id = next(self._stage_ids)
        blob = None
        if self.executor.in_process:
            key = f"inline-{stage_id}"
        else:
            try:
                blob = cloudpickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise SerializationError(explain_unpicklable(fn, exc)) from exc
            key = hashlib.blake2b(blob, digest_size=16).hexdigest()
        info = StageInfo(stage_id, job_id, kind, name, len(splits), time.time())
        return _Stage(stage_id, kind, name, fn, key, blob, splits, info=info)

    # ------------------------------------------------------------------ running tasks
    def _place(self, pending: deque[_Task], anywhere: bool) -> tuple[_Task | None, bool, bool]:
        """Take the next task to launch from ``pending`` and reserve its slot (``task.slot``).

        :param anywhere: place a task whose block's slot is full on another slot anyway.
        :returns: the task (``None`` if nothing can launch now), whether it runs where its
            block is, and whether some task was passed over to wait for its block's slot.
        """
        with self._lock:
            inflight = self._inflight
            free = [s for s, n in enumerate(inflight) if n < _IN_FLIGHT]
            if not free:
                return None, False, False
            least = min(free, key=inflight.__getitem__)
            passed_over = False
            for task in pending:
                preferred = task.preferred
                if preferred is None or preferred >= len(inflight):
                    slot, local = least, False
                elif inflight[preferred] < _IN_FLIGHT:
                    slot, local = preferred, True
                elif anywhere:
                    slot, local = least, False
                else:
                    passed_over = True
                    continue
                inflight[slot] += 1
                task.slot = slot
                pending.remove(task)
                return task, local, passed_over
            return None, False, passed_over

    def _preferred_slot(self, task: _Task) -> int | None:
        block = _preferred_block(task.stage.splits[task.partition])
        if block is None:
            return None
        return self.ctx._blocks.preferred_slot(block)

    def _submit(self, task: _Task, slot: int, force_blob: bool = False) -> Future:
        stage = task.stage
        if self.executor.in_process:
            payload: Any = stage.fn
        else:
            with self._lock:
                known = self._slot_stages[slot]
                send = force_blob or stage.key not in known
                known.add(stage.key)
            payload = stage.blob if send else None
        task.slot = slot
        task.info = TaskInfo(stage.stage_id, task.partition, task.attempt, slot, time.time())
        self.hooks.task_started(task.info)
        return self.executor.submit(
            worker.run_task, stage.key, payload, stage.splits[task.partition], stage.stage_id,
            task.attempt, self.executor.in_process, slot=slot,
        )

    def _release(self, slot: int | None) -> None:
        if slot is not None:
            with self._lock:
                self._inflight[slot] -= 1

    def _run_stages(self, stages: list[_Stage]) -> None:
        for stage in stages:
            self.hooks.stage_submitted(stage.info)
        pending: deque[_Task] = deque(
            _Task(stage, p) for stage in stages for p in stage.splits
        )
        for task in pending:
            task.preferred = self._preferred_slot(task)
        remaining = {id(s): len(s.splits) for s in stages}
        running: dict[Future, _Task] = {}
        locality_deadline: float | None = None  # when waiting tasks may run anywhere
        try:
            while pending or running:
                while pending:
                    now = time.monotonic()
                    anywhere = locality_deadline is not None and now >= locality_deadline
                    task, local, passed_over = self._place(pending, anywhere)
                    if local:  # a local launch restarts the wait, as in Spark
                        locality_deadline = None
                    if passed_over and locality_deadline is None:
                        locality_deadline = time.monotonic() + _LOCALITY_WAIT
                    if task is None:
                        break
                    running[self._submit(task, task.slot)] = task  # type: ignore[arg-type]
                if not running:
                    if pending:  # every slot is busy with other jobs' tasks: wait a little
                        time.sleep(0.0005)
                    continue
                timeout = None
                if pending and locality_deadline is not None:
                    timeout = max(0.0, locality_deadline - time.monotonic())
                done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = running.pop(fut)
                    self._release(task.slot)
                    retry = self._handle(task, fut)
                    if retry is None:
                        remaining[id(task.stage)] -= 1
                        if remaining[id(task.stage)] == 0:
                            self._stage_done(task.stage)
                    elif retry == "blob":
                        slot = task.slot
                        with self._lock:
                            self._inflight[slot] += 1  # type: ignore[index]
                        running[self._submit(task, slot, force_blob=True)] = task  # type: ignore[arg-type]
                    else:
                        task.preferred = self._preferred_slot(task)
                        pending.append(task)
        except BaseException as exc:
            for fut, task in running.items():
                fut.cancel()
                self._release(task.slot)
            for stage in stages:
                if stage.info.completion_time is None:
                    stage.info = attrs.evolve(stage.info, completion_time=time.time(),
                                              error=f"{type(exc).__name__}: {exc}")
                    self.hooks.stage_completed(stage.info)
            raise

    def _stage_done(self, stage: _Stage) -> None:
        stage.info = attrs.evolve(stage.info, completion_time=time.time())
        if stage.shuffled is not None:
            stage.shuffled._register_map_outputs(stage.results)
        self.hooks.stage_completed(stage.info)

    def _note_pid(self, slot: int | None, pid: int) -> None:
        if slot is None or self.executor.in_process:
            return
        with self._lock:
            old = self._slot_pid[slot]
            if old == pid:
                return
            self._slot_pid[slot] = pid
            if old is not None:
                self._slot_stages[slot] = set()
        if old is not None:
            self.ctx._blocks.worker_replaced(slot, pid)

    def _handle(self, task: _Task, fut: Future) -> str | None:
        """Process a finished attempt: ``None`` when done, else how to retry it."""
        stage = task.stage
        try:
            result = fut.result()
        except WorkerLostError as exc:
            with self._lock:
                self._slot_stages[task.slot] = set()  # type: ignore[index]
            self.ctx._blocks.worker_replaced(task.slot, -1)
            self._task_end(task, "LOST", str(exc))
            return self._retry_or_fail(task, exc, str(exc))
        except Exception as exc:  # the executor could not run it or return it
            # e.g. a result that cannot be pickled back: a failed attempt like any other,
            # with the worker's traceback text (loky keeps it in the cause) in ember's form.
            cause = exc.__cause__
            text = getattr(cause, "tb", None) or (str(cause) if cause is not None else "")
            text = text or "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            exc.__cause__ = RemoteTraceback(text)
            self._task_end(task, "FAILED", f"{type(exc).__name__}: {exc}")
            return self._retry_or_fail(task, exc, text)
        if isinstance(result, worker.NeedStage):
            return "blob"
        self._note_pid(task.slot, result.pid)
        if result.ok:
            if task.partition not in stage.results:
                stage.results[task.partition] = result.value
                if result.accumulator_updates:
                    merge_updates(result.accumulator_updates)
                for block_id, kind, path in result.stored_blocks:
                    self.ctx._blocks.add(block_id, kind, path, task.slot, result.pid)
            self._task_end(task, "SUCCESS", None)
            return None
        error = result.error
        self._task_end(task, "FAILED", f"{result.error_type}: {result.error_message}")
        if isinstance(error, FetchFailed):
            raise _FetchFailure(error)
        if error is None:
            error = TaskError(result.error_type, result.error_message, result.traceback_text)
        # Inline too, so that callers find the task's traceback text in the same place
        # whatever the executor (it already includes any cause the error had).
        error.__cause__ = RemoteTraceback(result.traceback_text)
        return self._retry_or_fail(task, error, result.traceback_text)

    def _retry_or_fail(self, task: _Task, error: BaseException, detail: str) -> str:
        if task.attempt + 1 >= self.max_failures:
            note = (
                f"ember: task {task.partition} of stage {task.stage.stage_id} "
                f"({task.stage.name}) failed {task.attempt + 1} times; the job was aborted. "
                f"The error above is the last attempt's."
            )
            if hasattr(error, "add_note"):
                error.add_note(note)
            raise error
        task.attempt += 1
        return "retry"

    def _task_end(self, task: _Task, status: str, error: str | None) -> None:
        info = task.info
        if info is not None:
            self.hooks.task_completed(
                attrs.evolve(info, finish_time=time.time(), status=status, error=error)
            )
