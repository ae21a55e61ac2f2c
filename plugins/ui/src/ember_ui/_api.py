"""The JSON documents of the API, shaped as Spark's streaming REST API (``/api/v1``).

Pure functions from a :class:`~ember_ui._store.Snapshot` to plain ``dict``/``list`` values,
with Spark's field names and conventions:

- dates are strings such as ``"2024-05-01T12:00:01.000GMT"`` (Spark's format, UTC);
- durations are integers in milliseconds;
- a batch's id is its batch time in milliseconds;
- a value Spark declares as optional is *left out* when it is unknown (Spark's JSON writer
  omits absent options), e.g. ``processingTime`` of a queued batch.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from ember.events import BatchInfo, OutputOperationInfo

from ember_ui._store import Snapshot

__all__ = [
    "BATCH_STATUSES",
    "application",
    "batch_detail_json",
    "batch_json",
    "batches_json",
    "format_date",
    "operation_json",
    "operations_json",
    "receiver_json",
    "receivers_json",
    "statistics_json",
]

#: The batch statuses of Spark's API, in the order the API lists them.
BATCH_STATUSES = ("COMPLETED", "QUEUED", "PROCESSING")


def format_date(ms: int | None) -> str | None:
    """Spark's date format, ``yyyy-MM-dd'T'HH:mm:ss.SSS'GMT'`` in UTC, or ``None``."""
    if ms is None:
        return None
    t = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
        milliseconds=ms
    )
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}GMT"


def _present(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without its ``None`` values (Spark omits absent optional fields)."""
    return {k: v for k, v in doc.items() if v is not None}


def _avg_int(values: list[int]) -> int | None:
    return sum(values) // len(values) if values else None


def application(snap: Snapshot, version: str) -> dict[str, Any]:
    """The ``/api/v1/applications`` entry of the running application."""
    end = snap.stop_time
    start = snap.start_time
    return {
        "id": snap.app_id,
        "name": snap.app_name,
        "attempts": [
            _present({
                "startTime": format_date(start),
                "endTime": format_date(end),
                "lastUpdated": format_date(snap.now),
                "duration": (snap.now - start) if start is not None and snap.now else None,
                "completed": end is not None,
                "appSparkVersion": version,
                "startTimeEpoch": start,
                "endTimeEpoch": end,
            })
        ],
    }


def _retained(snap: Snapshot) -> list[BatchInfo]:
    """Every retained batch, as Spark's ``retainedBatches``: queued, running, completed."""
    return [*snap.waiting.values(), *snap.running.values(), *snap.completed]


def statistics_json(snap: Snapshot) -> dict[str, Any]:
    """``/streaming/statistics``: totals since the start, and averages over the retained
    batches (as Spark: the queued and running ones too, each delay where it is known)."""
    duration = snap.batch_duration or 0
    batches = _retained(snap)
    rates = [b.numRecords() * 1000.0 / duration for b in batches] if duration else []
    scheduling = [d for d in (b.schedulingDelay() for b in batches) if d is not None]
    processing = [d for d in (b.processingDelay() for b in batches) if d is not None]
    total = [d for d in (b.totalDelay() for b in batches) if d is not None]
    active = sum(1 for r in snap.receivers.values() if r.active)
    return _present({
        "startTime": format_date(snap.start_time),
        "batchDuration": duration,
        "numReceivers": len(snap.receivers),
        "numActiveReceivers": active,
        "numInactiveReceivers": len(snap.receivers) - active,
        "numTotalCompletedBatches": snap.total_completed,
        "numRetainedCompletedBatches": len(snap.completed),
        "numActiveBatches": len(snap.waiting) + len(snap.running),
        "numProcessedRecords": snap.processed_records,
        "numReceivedRecords": snap.received_records,
        "avgInputRate": sum(rates) / len(rates) if rates else None,
        "avgSchedulingDelay": _avg_int(scheduling),
        "avgProcessingTime": _avg_int(processing),
        "avgTotalDelay": _avg_int(total),
    })


def _ops_of(snap: Snapshot, status: str, info: BatchInfo) -> dict[int, OutputOperationInfo]:
    """A batch's output operations, with the progress of an active batch merged in."""
    if status == "COMPLETED":
        return info.output_operation_infos
    ops = dict(info.output_operation_infos)
    ops.update(snap.running_ops.get(info.batch_time, {}))
    return ops


def batch_json(snap: Snapshot, status: str, info: BatchInfo) -> dict[str, Any]:
    """One batch in Spark's ``BatchInfo`` shape."""
    ops = _ops_of(snap, status, info)
    values = [ops[k] for k in sorted(ops)]
    failures = [o.failure_reason for o in values if o.failure_reason]
    return _present({
        "batchId": info.batch_time,
        "batchTime": format_date(info.batch_time),
        "status": status,
        "batchDuration": snap.batch_duration,
        "inputSize": info.numRecords(),
        "schedulingDelay": info.schedulingDelay(),
        "processingTime": info.processingDelay(),
        "totalDelay": info.totalDelay(),
        "numActiveOutputOps": sum(1 for o in values if o.end_time is None),
        "numCompletedOutputOps": sum(
            1 for o in values if o.end_time is not None and not o.failure_reason
        ),
        "numFailedOutputOps": len(failures),
        "numTotalOutputOps": len(values),
        "firstFailureReason": failures[0] if failures else None,
    })


def batch_detail_json(snap: Snapshot, status: str, info: BatchInfo) -> dict[str, Any]:
    """``/streaming/batches/{batchId}``: :func:`batch_json` plus ``inputInfos`` (an ember
    extension: per input stream, its id, records and description)."""
    doc = batch_json(snap, status, info)
    doc["inputInfos"] = [
        _present({"streamId": i.input_stream_id, "numRecords": i.num_records,
                  "description": i.metadataDescription()})
        for _, i in sorted(info.stream_id_to_input_info.items())
    ]
    return doc


def batches_json(snap: Snapshot, statuses: Iterable[str] = ()) -> list[dict[str, Any]]:
    """``/streaming/batches``: the retained batches with the given statuses, newest first.

    :param statuses: any of :data:`BATCH_STATUSES`; none means all.
    """
    wanted = set(statuses) or set(BATCH_STATUSES)
    out: list[dict[str, Any]] = []
    groups = (("COMPLETED", snap.completed), ("QUEUED", snap.waiting.values()),
              ("PROCESSING", snap.running.values()))
    for status, infos in groups:
        if status in wanted:
            out.extend(batch_json(snap, status, info) for info in infos)
    out.sort(key=lambda b: -b["batchId"])
    return out


def operation_json(snap: Snapshot, op: OutputOperationInfo) -> dict[str, Any]:
    """One output operation in Spark's ``OutputOperationInfo`` shape."""
    return _present({
        "outputOpId": op.id,
        "name": op.name,
        "description": op.description,
        "startTime": format_date(op.start_time),
        "endTime": format_date(op.end_time),
        "duration": op.duration(),
        "failureReason": op.failure_reason,
        "jobIds": list(snap.job_ids.get((op.batch_time, op.id), ())),
    })


def operations_json(snap: Snapshot, status: str, info: BatchInfo) -> list[dict[str, Any]]:
    """``/streaming/batches/{batchId}/operations``: a batch's output operations by id."""
    ops = _ops_of(snap, status, info)
    return [operation_json(snap, ops[k]) for k in sorted(ops)]


def _stream_ids(snap: Snapshot) -> list[int]:
    return sorted(set(snap.receivers) | set(snap.stream_records))


def receiver_json(snap: Snapshot, stream_id: int) -> dict[str, Any] | None:
    """One input stream in Spark's ``ReceiverInfo`` shape, or ``None`` if unknown.

    ``eventRates`` holds ``[batch time ms, records/s]`` for every retained batch;
    ``numRecordsReceived`` (not in Spark) is the total since the start.
    """
    if stream_id not in snap.receivers and stream_id not in snap.stream_records:
        return None
    duration = snap.batch_duration or 0
    rates: list[list[float]] = []
    if duration:
        for b in sorted(_retained(snap), key=lambda b: b.batch_time):
            got = b.stream_id_to_input_info.get(stream_id)
            rates.append([b.batch_time, (got.num_records if got else 0) * 1000.0 / duration])
    info = snap.receivers.get(stream_id)
    doc: dict[str, Any] = {
        "streamId": stream_id,
        "streamName": info.name if info else snap.stream_names.get(stream_id,
                                                                   f"Stream-{stream_id}"),
        "isActive": info.active if info else None,
        "executorId": info.executor_id if info else None,
        "executorHost": info.location if info else None,
        "lastErrorTime": None,
        "lastErrorMessage": None,
        "lastError": None,
        "avgEventRate": sum(r for _, r in rates) / len(rates) if rates else None,
        "eventRates": rates,
        "numRecordsReceived": snap.stream_records.get(stream_id, 0),
    }
    if info is not None:
        if info.last_error_time >= 0:
            doc["lastErrorTime"] = format_date(info.last_error_time)
        doc["lastErrorMessage"] = info.last_error_message or None
        doc["lastError"] = info.last_error or None
    return _present(doc)


def receivers_json(snap: Snapshot) -> list[dict[str, Any]]:
    """``/streaming/receivers``: every input stream seen so far, by stream id."""
    out = []
    for stream_id in _stream_ids(snap):
        doc = receiver_json(snap, stream_id)
        if doc is not None:
            out.append(doc)
    return out
