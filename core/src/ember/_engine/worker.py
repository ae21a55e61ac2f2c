"""The task runner: what executes one task inside a worker (or inline in the driver).

A *stage function* ``stage(split, task)`` computes one partition and returns the task's
value (a result for result stages, a map status for shuffle-map stages). The driver
serializes it once per stage with cloudpickle and sends the bytes to a worker only the first
time that worker runs a task of the stage; the worker keeps the loaded function in a small
cache. Errors raised by user code are caught here and returned as values, with the
traceback text, so the driver can re-raise the user's own exception.
"""

from __future__ import annotations

import os
import pickle
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["NeedStage", "TaskContext", "TaskResult", "current_task", "run_task"]

_STAGE_CACHE_SIZE = 64
_stages: OrderedDict[str, Callable[..., Any]] = OrderedDict()
_local = threading.local()
#: Partitions cached in this process's memory: block id -> list (MEMORY_ONLY persistence),
#: or -> serialized bytes (other levels, when workers do not share the driver's files).
memory_blocks: dict[str, list | bytes] = {}


@attrs.define
class TaskContext:
    """What a running task knows about itself, plus what it reports back to the driver."""

    stage_id: int
    partition: int
    attempt: int
    accumulator_updates: dict[int, Any] = attrs.field(factory=dict)
    stored_blocks: list[tuple[str, str, str | None]] = attrs.field(factory=list)


@attrs.frozen
class NeedStage:
    """Returned when the worker was asked to run a stage it has no function for."""

    stage_key: str


@attrs.frozen
class TaskResult:
    """The outcome of one task attempt, as it travels back to the driver."""

    ok: bool
    value: Any = None
    error: BaseException | None = None
    error_type: str = ""
    error_message: str = ""
    traceback_text: str = ""
    accumulator_updates: dict[int, Any] = attrs.field(factory=dict)
    stored_blocks: list[tuple[str, str, str | None]] = attrs.field(factory=list)
    pid: int = 0


def current_task() -> TaskContext | None:
    """The task running in this thread, or ``None`` on the driver outside tasks."""
    return getattr(_local, "task", None)


def _load_stage(stage_key: str, stage: bytes | Callable[..., Any] | None) -> Callable | None:
    if stage is not None and not isinstance(stage, bytes):
        # In-process: the function itself. Not cached: its key is only unique within one
        # context, and a cache would keep the job's data alive after the job.
        return stage
    fn = _stages.get(stage_key)
    if fn is not None:
        _stages.move_to_end(stage_key)
        return fn
    if stage is None:
        return None
    import cloudpickle  # noqa: F401 - registers what loading closures needs

    fn = pickle.loads(stage)
    _stages[stage_key] = fn
    while len(_stages) > _STAGE_CACHE_SIZE:
        _stages.popitem(last=False)
    return fn


def forget_stage(stage_key: str) -> None:
    """Drop a stage function from this process's cache (after the stage is done)."""
    _stages.pop(stage_key, None)


def run_task(
    stage_key: str,
    stage: bytes | Callable[..., Any] | None,
    split: Any,
    stage_id: int,
    attempt: int,
    in_process: bool = False,
) -> TaskResult | NeedStage:
    """Run one task: load (or reuse) the stage function and apply it to ``split``."""
    try:
        fn = _load_stage(stage_key, stage)
    except Exception as exc:  # e.g. a module the worker cannot import
        if hasattr(exc, "add_note"):
            exc.add_note(
                "ember: the worker could not load the task's function. Functions and classes "
                "from a module the workers cannot import (such as a test file collected with "
                "--import-mode=importlib) are pickled by reference: define them inside the "
                "function that builds the job, or register the module with "
                "cloudpickle.register_pickle_by_value(module)."
            )
        return _failure(exc, in_process)
    if fn is None:
        return NeedStage(stage_key)
    task = TaskContext(stage_id, split.index, attempt)
    previous = getattr(_local, "task", None)
    _local.task = task
    try:
        value = fn(split, task)
    except BaseException as exc:  # every user error travels back as a value
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and in_process:
            raise
        return _failure(exc, in_process)
    finally:
        _local.task = previous
    return TaskResult(
        ok=True,
        value=value,
        accumulator_updates=task.accumulator_updates,
        stored_blocks=task.stored_blocks,
        pid=os.getpid(),
    )


def forget_context(block_prefix: str, local_dir: str) -> None:
    """Drop what a stopped context left in this process: cached blocks, broadcast values."""
    from ember.broadcast import forget_broadcasts

    evict_blocks(block_prefix)
    forget_broadcasts(local_dir)


def _failure(exc: BaseException, in_process: bool) -> TaskResult:
    """The result of an attempt that raised ``exc``: the error itself when it can travel."""
    tb_text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    error: BaseException | None = exc
    if not in_process:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # an exception that cannot travel
            error = None
        exc.__traceback__ = None
    return TaskResult(
        ok=False,
        error=error,
        error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
        error_message=str(exc),
        traceback_text=tb_text,
        pid=os.getpid(),
    )


def evict_blocks(prefix: str) -> int:
    """Drop the in-memory cached partitions whose block id starts with ``prefix``."""
    doomed = [k for k in memory_blocks if k.startswith(prefix)]
    for k in doomed:
        del memory_blocks[k]
    return len(doomed)
