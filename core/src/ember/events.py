"""The event objects passed to hooks: immutable facts about jobs, stages and tasks.

New facts become new fields, never new hook arguments.
"""

from __future__ import annotations

import attrs

__all__ = ["JobInfo", "StageInfo", "TaskInfo"]


@attrs.frozen
class JobInfo:
    """One job: the work one action (``collect``, ``count``, ...) started.

    :ivar job_id: increasing per context, from 0.
    :ivar description: what started it, e.g. ``"collect at wordcount.py:12"``.
    :ivar stage_ids: the stages the job needed (those already computed are skipped).
    :ivar submission_time: seconds since the epoch.
    :ivar completion_time: seconds since the epoch, ``None`` while running.
    :ivar error: the error text when the job failed, else ``None``.
    """

    job_id: int
    description: str
    stage_ids: tuple[int, ...]
    submission_time: float
    completion_time: float | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """Whether the job completed without error."""
        return self.completion_time is not None and self.error is None


@attrs.frozen
class StageInfo:
    """One stage: tasks that run one fused pipeline, one task per partition.

    :ivar stage_id: increasing per context.
    :ivar job_id: the job that submitted it.
    :ivar kind: ``"shuffle-map"`` (writes shuffle output) or ``"result"``.
    :ivar name: the RDD the stage computes, e.g. ``"PythonRDD[3] reduceByKey"``.
    :ivar num_tasks: the number of tasks (partitions) it runs.
    :ivar submission_time: seconds since the epoch.
    :ivar completion_time: seconds since the epoch, ``None`` while running.
    :ivar error: the error text when the stage failed, else ``None``.
    """

    stage_id: int
    job_id: int
    kind: str
    name: str
    num_tasks: int
    submission_time: float
    completion_time: float | None = None
    error: str | None = None


@attrs.frozen
class TaskInfo:
    """One attempt of one task.

    :ivar stage_id: the stage it belongs to.
    :ivar partition: the partition it computes.
    :ivar attempt: 0 for the first attempt, then 1, 2, ...
    :ivar worker: the worker slot that ran it (``None`` for the inline executor).
    :ivar launch_time: seconds since the epoch.
    :ivar finish_time: seconds since the epoch, ``None`` while running.
    :ivar status: ``"RUNNING"``, ``"SUCCESS"``, ``"FAILED"`` (raised) or ``"LOST"`` (worker died).
    :ivar error: the error text when it failed, else ``None``.
    """

    stage_id: int
    partition: int
    attempt: int
    worker: int | None
    launch_time: float
    finish_time: float | None = None
    status: str = "RUNNING"
    error: str | None = None
