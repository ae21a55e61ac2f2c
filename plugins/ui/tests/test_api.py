"""The JSON API against real streams: the values are those of the batches that ran."""

from __future__ import annotations

import threading

import pytest
from ember.testing import advance_batches

# Records per batch of the queue stream the tests run.
SIZES = [3, 5, 0, 7, 2]


def build_counting_stream(stream, sizes=SIZES, processing_s=0.25):
    """A queue stream of batches of ``sizes`` records whose output op takes ``processing_s``
    seconds of the manual clock (it advances the clock while it runs)."""
    batches = [[f"w{i} x{j}" for j in range(n)] for i, n in enumerate(sizes)]
    seen: list[int] = []

    def record(rdd):
        seen.append(rdd.count())
        stream.clock.advance(processing_s)

    stream.ssc.queueStream(batches).foreachRDD(record)
    return seen


def test_statistics_match_the_batches_that_ran(http, make_stream, ember_master):
    s = make_stream(ember_master)
    seen = build_counting_stream(s)
    s.ssc.start()
    advance_batches(s.ssc, len(SIZES))
    assert seen == SIZES

    stats = http.json(f"{s.api}/statistics")
    assert stats["batchDuration"] == 1000
    assert stats["startTime"] == "2023-11-14T22:13:20.000GMT"  # START, in Spark's format
    assert stats["numTotalCompletedBatches"] == len(SIZES)
    assert stats["numRetainedCompletedBatches"] == len(SIZES)
    assert stats["numActiveBatches"] == 0
    assert stats["numProcessedRecords"] == stats["numReceivedRecords"] == sum(SIZES)
    assert stats["avgInputRate"] == pytest.approx(sum(SIZES) / len(SIZES))  # records/s at 1 s
    assert stats["avgSchedulingDelay"] == 0
    assert stats["avgProcessingTime"] == 250
    assert stats["avgTotalDelay"] == 250
    assert stats["numReceivers"] == stats["numActiveReceivers"] == 0


def test_batches_list_every_batch_newest_first_with_spark_fields(http, make_stream):
    s = make_stream()
    t1 = s.t1
    build_counting_stream(s)
    s.ssc.start()
    advance_batches(s.ssc, len(SIZES))

    batches = http.json(f"{s.api}/batches")
    times = [t1 + 1000 * i for i in range(len(SIZES))]
    assert [b["batchId"] for b in batches] == times[::-1]
    for b, size in zip(batches, SIZES[::-1], strict=True):
        assert b["status"] == "COMPLETED"
        assert b["batchDuration"] == 1000
        assert b["inputSize"] == size
        assert (b["schedulingDelay"], b["processingTime"], b["totalDelay"]) == (0, 250, 250)
        assert (b["numActiveOutputOps"], b["numCompletedOutputOps"],
                b["numFailedOutputOps"], b["numTotalOutputOps"]) == (0, 1, 0, 1)
        assert "firstFailureReason" not in b
    assert batches[-1]["batchTime"] == "2023-11-14T22:13:21.000GMT"

    one = http.json(f"{s.api}/batches/{times[1]}")
    assert one["inputSize"] == SIZES[1]
    assert one["inputInfos"] == [
        {"streamId": 0, "numRecords": SIZES[1], "description": one["inputInfos"][0]["description"]}
    ]
    assert http.json(f"{s.api}/batches?status=COMPLETED") == batches
    assert http.json(f"{s.api}/batches?status=queued&status=PROCESSING") == []


def test_a_failing_output_operation_shows_in_the_batch_api_with_its_traceback(http, make_stream):
    s = make_stream()
    t1 = s.t1
    lines = s.ssc.queueStream([["a"], ["b", "c"], ["d"]])
    lines.foreachRDD(lambda rdd: rdd.count())

    def store(t, rdd):
        if rdd.count() == 2:
            raise ValueError("no such table: words")

    lines.foreachRDD(store)
    s.ssc.start()
    advance_batches(s.ssc, 3)
    failed = t1 + 1000

    batch = http.json(f"{s.api}/batches/{failed}")
    assert batch["numFailedOutputOps"] == 1
    assert batch["numCompletedOutputOps"] == 1
    assert batch["numTotalOutputOps"] == 2
    reason = batch["firstFailureReason"]
    assert reason.startswith("Traceback (most recent call last):")
    assert "in store" in reason and reason.rstrip().endswith("ValueError: no such table: words")

    ops = http.json(f"{s.api}/batches/{failed}/operations")
    assert [o["outputOpId"] for o in ops] == [0, 1]
    assert "failureReason" not in ops[0]
    assert ops[1]["failureReason"] == reason
    assert ops[1]["name"] == "foreachRDD"
    assert "test_api.py" in ops[1]["description"]
    assert ops[0]["jobIds"] and ops[1]["jobIds"], "each op ran a count() job"
    assert set(ops[0]["jobIds"]).isdisjoint(ops[1]["jobIds"])
    assert http.json(f"{s.api}/batches/{failed}/operations/1") == ops[1]
    for ok in (t1, t1 + 2000):
        assert "firstFailureReason" not in http.json(f"{s.api}/batches/{ok}")


def test_queued_and_processing_batches_are_listed_as_active(http, make_stream):
    s = make_stream()
    t1 = s.t1
    started, release = threading.Event(), threading.Event()

    def slow(rdd):
        started.set()
        assert release.wait(30), "the test never released the batch"

    s.ssc.queueStream([["a", "b"], ["c"]]).foreachRDD(slow)
    s.ssc.start()
    try:
        s.clock.set_time((t1 + 1000) / 1000)  # batches t1 and t1+1000 are due
        assert started.wait(20)
        http.wait_for(lambda: len(s.ui.store.snapshot().waiting) == 1, "the second batch queued")
        running = http.json(f"{s.api}/batches?status=PROCESSING")
        queued = http.json(f"{s.api}/batches?status=QUEUED")
        assert [b["batchId"] for b in running] == [t1]
        assert [b["batchId"] for b in queued] == [t1 + 1000]
        assert running[0]["numActiveOutputOps"] == 1 and "processingTime" not in running[0]
        assert "schedulingDelay" not in queued[0]
        assert http.json(f"{s.api}/statistics")["numActiveBatches"] == 2
        ops = http.json(f"{s.api}/batches/{t1}/operations")
        assert "startTime" in ops[0] and "endTime" not in ops[0]
    finally:
        release.set()
    s.ssc._await_batch(t1 + 1000)
    assert [b["status"] for b in http.json(f"{s.api}/batches")] == ["COMPLETED"] * 2


def test_only_the_configured_number_of_completed_batches_is_retained(http, make_stream):
    s = make_stream(conf={"ember.ui.retainedBatches": 3})
    t1 = s.t1
    build_counting_stream(s)
    s.ssc.start()
    advance_batches(s.ssc, len(SIZES))
    stats = http.json(f"{s.api}/statistics")
    assert stats["numTotalCompletedBatches"] == 5
    assert stats["numRetainedCompletedBatches"] == 3
    assert stats["numProcessedRecords"] == sum(SIZES)
    assert stats["avgInputRate"] == pytest.approx(sum(SIZES[2:]) / 3)
    assert [b["batchId"] for b in http.json(f"{s.api}/batches")] == [
        t1 + 4000, t1 + 3000, t1 + 2000]
    assert http.get(f"{s.api}/batches/{t1}")[0] == 404


def test_unknown_ids_are_404_and_a_bad_status_is_400(http, make_stream):
    s = make_stream()
    t1 = s.t1
    build_counting_stream(s, [1])
    s.ssc.start()
    advance_batches(s.ssc, 1)
    base = f"{s.base}/api/v1/applications"
    status, _, body = http.get(f"{base}/nope/streaming/statistics")
    assert (status, body) == (404, "unknown app: nope")
    status, _, body = http.get(f"{s.api}/batches/12345")
    assert (status, body) == (404, "Couldn't find batch with batch id: 12345")
    assert http.get(f"{s.api}/batches/{t1}/operations/7")[0] == 404
    assert http.get(f"{s.api}/receivers/9")[0] == 404
    status, _, body = http.get(f"{s.api}/batches?status=DONE")
    assert status == 400 and "COMPLETED" in body


def test_the_applications_endpoint_lists_the_running_application(http, make_stream):
    s = make_stream()
    build_counting_stream(s, [1])
    s.ssc.start()
    advance_batches(s.ssc, 1)
    apps = http.json(f"{s.base}/api/v1/applications")
    assert [a["id"] for a in apps] == [s.ui.settings.app_id]
    assert s.ui.settings.app_id.startswith("local-")
    attempt = apps[0]["attempts"][0]
    assert apps[0]["name"] == "ui-test"
    assert attempt["completed"] is False
    assert attempt["startTime"] == "2023-11-14T22:13:20.000GMT"
    assert http.json(f"{s.base}/api/v1/applications/{s.ui.settings.app_id}") == apps[0]
