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
  A task reading a block cached in one worker's memory goes to that worker when it can.

Failures
--------
- A task that raises is retried up to ``ember.task.maxFailures`` attempts (default 4); then
  the job fails with the user's own exception (type, message), its ``__cause__`` holding the
  remote traceback text (:class:`ember.errors.RemoteTraceback`).
- A worker that dies (even by SIGKILL) fails its in-flight tasks with ``WorkerLostError``;
  they are resubmitted (counting as failed attempts) and the slot gets a new process. Its
  cached memory blocks are forgotten; shuffle outputs it wrote are files and survive.
- A reduce task that cannot read a map output (``FetchFailed``) makes the scheduler forget
  that output and rerun the map task before retrying the reduce stage.

Invariants: results are returned in partition order; accumulator updates of a task are
merged exactly once, from its first successful attempt; a job that fails leaves no task of
its own running when ``run_job`` returns... except tasks already running in a worker, whose
results are ignored.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any

import attrs
import cloudpickle

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


class _FetchFailure(Exception):
    def __init__(self, failure: FetchFailed) -> None:
        self.failure = failure
        super().__init__(str(failure))


def _caller_description(action: str) -> str:
    frame = sys._getframe(2)
    ember_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(ember_dir):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return action
    return f"{action} at {os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


class Scheduler:
    """Runs jobs for one :class:`~ember.Context`; safe to call from several threads."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.executor = ctx._executor
        self.hooks = ctx._hooks
        self.max_failures = max(1, ctx._conf.getInt("ember.task.maxFailures") or 4)
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
        job = JobInfo(job_id, _caller_description(action), (), time.time())
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
                self.ctx._forget_map_output(ff.failure.shuffle_id, ff.failure.map_id)
        raise ff.failure  # pragma: no cover - map outputs vanished again and again

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
    def _pick_slot(self, task: _Task) -> int | None:
        with self._lock:
            inflight = self._inflight
            preferred = self._preferred_slot(task)
            if preferred is not None and inflight[preferred] < _IN_FLIGHT:
                slot = preferred
            else:
                slot = min(range(len(inflight)), key=inflight.__getitem__)
                if inflight[slot] >= _IN_FLIGHT:
                    return None
            inflight[slot] += 1
            return slot

    def _preferred_slot(self, task: _Task) -> int | None:
        split = task.stage.splits[task.partition]
        block = getattr(split, "block_id", None) or getattr(
            getattr(split, "inner", None), "block_id", None
        )
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
        remaining = {id(s): len(s.splits) for s in stages}
        running: dict[Future, _Task] = {}
        try:
            while pending or running:
                while pending:
                    slot = self._pick_slot(pending[0])
                    if slot is None:
                        break
                    task = pending.popleft()
                    running[self._submit(task, slot)] = task
                if not running:
                    if pending:  # every slot is busy with other jobs' tasks: wait a little
                        time.sleep(0.0005)
                    continue
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
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
        if not self.executor.in_process or error.__traceback__ is None:
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
