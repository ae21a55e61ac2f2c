"""The event objects passed to hooks: immutable facts about jobs, stages and tasks.

New facts become new fields, never new hook arguments.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "BatchInfo",
    "CheckpointInfo",
    "JobInfo",
    "OutputOperationInfo",
    "ReceiverInfo",
    "StageInfo",
    "StreamInputInfo",
    "TaskInfo",
    "Time",
]


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


# --------------------------------------------------------------------------- streaming


@attrs.frozen(order=True)
class Time:
    """A batch time: milliseconds since the epoch (PySpark/Scala ``Time``)."""

    ms: int

    def milliseconds(self) -> int:
        """The time in milliseconds."""
        return self.ms

    def to_datetime(self) -> Any:
        """The local ``datetime`` PySpark passes to ``foreachRDD`` functions."""
        import datetime

        return datetime.datetime.fromtimestamp(self.ms / 1000.0)

    def __str__(self) -> str:
        return f"{self.ms} ms"


@attrs.frozen
class StreamInputInfo:
    """What one input stream contributed to one batch."""

    input_stream_id: int
    num_records: int
    metadata: dict[str, Any] = attrs.field(factory=dict)

    def inputStreamId(self) -> int:
        """The id of the input stream."""
        return self.input_stream_id

    def numRecords(self) -> int:
        """The number of records it contributed."""
        return self.num_records

    def metadataDescription(self) -> str | None:
        """A one-line description of where the records came from, if known."""
        return self.metadata.get("Description")


@attrs.frozen
class OutputOperationInfo:
    """One output operation (``pprint``, ``foreachRDD`` ...) of one batch.

    Times are milliseconds of the streaming clock; ``None`` until known.
    """

    batch_time: int
    id: int
    name: str
    description: str
    start_time: int | None = None
    end_time: int | None = None
    failure_reason: str | None = None

    def batchTime(self) -> Time:
        """The batch time."""
        return Time(self.batch_time)

    def outputOperationId(self) -> int:
        """The id of the output operation: its position among the context's output operations."""
        return self.id

    def startTime(self) -> int | None:
        """When it started (ms)."""
        return self.start_time

    def endTime(self) -> int | None:
        """When it ended (ms)."""
        return self.end_time

    def duration(self) -> int | None:
        """How long it ran (ms)."""
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    def failureReason(self) -> str | None:
        """The error (type, message and traceback text) when it failed."""
        return self.failure_reason


@attrs.frozen
class BatchInfo:
    """One batch: its time, when it was submitted and processed, its input and output operations.

    Times are milliseconds of the streaming clock. Delays are ``None`` until known.
    """

    batch_time: int
    stream_id_to_input_info: dict[int, StreamInputInfo]
    submission_time: int
    processing_start_time: int | None = None
    processing_end_time: int | None = None
    output_operation_infos: dict[int, OutputOperationInfo] = attrs.field(factory=dict)

    # PySpark / Scala accessors -------------------------------------------------------
    def batchTime(self) -> Time:
        """The batch time."""
        return Time(self.batch_time)

    def submissionTime(self) -> int:
        """When the batch's jobs were submitted (ms)."""
        return self.submission_time

    def processingStartTime(self) -> int | None:
        """When its first job started (ms)."""
        return self.processing_start_time

    def processingEndTime(self) -> int | None:
        """When its last job ended (ms)."""
        return self.processing_end_time

    def schedulingDelay(self) -> int | None:
        """How long it waited for earlier batches before starting (ms)."""
        if self.processing_start_time is None:
            return None
        return self.processing_start_time - self.submission_time

    def processingDelay(self) -> int | None:
        """How long its jobs ran (ms)."""
        if self.processing_start_time is None or self.processing_end_time is None:
            return None
        return self.processing_end_time - self.processing_start_time

    def totalDelay(self) -> int | None:
        """From the batch time to the end of processing (ms)."""
        if self.processing_end_time is None:
            return None
        return self.processing_end_time - self.batch_time

    def numRecords(self) -> int:
        """The records of all input streams in this batch."""
        return sum(i.num_records for i in self.stream_id_to_input_info.values())

    def streamIdToInputInfo(self) -> dict[int, StreamInputInfo]:
        """Per input stream id, what it contributed."""
        return self.stream_id_to_input_info

    def outputOperationInfos(self) -> dict[int, OutputOperationInfo]:
        """Per output operation id, its info."""
        return self.output_operation_infos

    @property
    def failed(self) -> bool:
        """Whether an output operation of the batch failed."""
        return any(o.failure_reason for o in self.output_operation_infos.values())


@attrs.frozen
class ReceiverInfo:
    """A receiver's state, as reported to listeners."""

    stream_id: int
    name: str
    active: bool
    location: str = "driver"
    executor_id: str = "driver"
    last_error_message: str = ""
    last_error: str = ""
    last_error_time: int = -1

    def streamId(self) -> int:
        """The id of the input stream the receiver feeds."""
        return self.stream_id

    def lastErrorMessage(self) -> str:
        """The message of the last error reported."""
        return self.last_error_message

    def lastError(self) -> str:
        """The last error's text (type, message and traceback)."""
        return self.last_error

    def lastErrorTime(self) -> int:
        """When the last error was reported (ms), -1 if never."""
        return self.last_error_time


@attrs.frozen
class CheckpointInfo:
    """A metadata checkpoint that was written.

    :ivar path: the checkpoint file.
    :ivar batch_time: the batch it was written for (ms).
    """

    path: str
    batch_time: int
