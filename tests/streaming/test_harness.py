"""ember.testing.StreamHarness: what source plugins' tests build on."""

from __future__ import annotations

import pytest
from ember.testing import StreamHarness, TestingFeed, TestingSource


def test_the_harness_runs_batches_until_the_records_arrive(ember_master):
    t = StreamHarness(ember_master, {"ember.streaming.receiverRestartDelay": "50ms"})
    try:
        feed = TestingFeed()
        t.collect(TestingSource(feed=feed).createStream(t.ssc))
        t.collect(t.ssc.queueStream([[1, 2], [3]]))
        t.start()
        t.events.wait(lambda: t.events.started, "the receiver's start")
        assert len(t.events.started_at) == 1
        feed.send(["a", "b"])
        got = t.run_until_records(5)
        assert sorted(map(str, got)) == ["1", "2", "3", "a", "b"]
        assert t.events.batches and t.events.errors == []
    finally:
        assert t.stop() >= 0
    assert t.events.stopped, "stopping the stream stops its receiver, and listeners see it"


def test_run_until_fails_naming_what_it_waited_for():
    t = StreamHarness()
    try:
        t.collect(t.ssc.queueStream([[1]]))
        t.start()
        with pytest.raises(AssertionError, match=r"waiting for the impossible; got 1 records"):
            t.run_until(lambda: False, "the impossible", timeout=0.3)
    finally:
        t.stop()
