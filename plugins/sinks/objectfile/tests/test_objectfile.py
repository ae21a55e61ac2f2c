"""ember-objectfile's own behaviour: end to end from a stream, and its argument checking."""

from __future__ import annotations

import datetime
import os
import pickle
from decimal import Decimal

import pytest
from ember import Conf, Context
from ember.plugins import load_component
from ember.streaming import StreamingContext
from ember.testing import ManualClock, advance_batches
from ember_objectfile import ObjectFileSink

START = 1_700_000_000.0  # the manual clock's start (s); the first batch is one interval later
T1 = 1_700_000_001_000  # the first batch time (ms) with a 1 s interval


@pytest.fixture
def out(tmp_path):
    """Where a test's batches go (tmp_path also holds the context's checkpoint directory)."""
    return tmp_path / "out"


@pytest.fixture
def ssc(ember_context):
    ssc = StreamingContext(ember_context, 1.0, clock=ManualClock(START))
    yield ssc
    ssc.stop(stopSparkContext=False)


def test_it_is_registered_as_the_objectfile_sink():
    assert load_component("sinks", "objectfile") is ObjectFileSink


def test_save_as_object_files_writes_exactly_one_directory_per_batch(
    ssc, out, ember_context, ember_master
):
    batches = [
        [{"user": "ann", "n": 1}, ("pair", [1, 2])],
        ["multi\nline", None, Decimal("1.10"), datetime.date(2024, 2, 29)],
        [],
    ]
    ssc.queueStream(batches).saveAsObjectFiles(str(out / "events"))
    ssc.start()
    advance_batches(ssc, 4)
    times = [T1 + 1000 * k for k in range(4)]
    assert sorted(os.listdir(out)) == [f"events-{t}" for t in times]
    for t in times:
        assert os.path.exists(out / f"events-{t}" / "_SUCCESS")
    got = [ember_context.pickleFile(str(out / f"events-{t}")).collect()
           for t in times]
    assert got == [*batches, []]
    assert type(got[1][2]) is Decimal


def test_the_suffix_ends_each_directory_name(ssc, out, ember_context):
    ssc.queueStream([[("a", 1)], [("b", 2)]]).saveAsObjectFiles(str(out / "kv"), "pkl")
    ssc.start()
    advance_batches(ssc, 2)
    assert sorted(os.listdir(out)) == [f"kv-{T1}.pkl", f"kv-{T1 + 1000}.pkl"]
    assert ember_context.pickleFile(str(out / f"kv-{T1 + 1000}.pkl")).collect() == [("b", 2)]


def test_a_failing_batch_writes_nothing_and_later_batches_are_still_written(ssc, out):
    def check(x):
        if x == "bad":
            raise ValueError("bad record")
        return x

    ssc.queueStream([["ok"], ["bad"], ["fine"]]).map(check).saveAsObjectFiles(str(out / "o"))
    ssc.start()
    advance_batches(ssc, 3)
    assert sorted(os.listdir(out)) == [f"o-{T1}", f"o-{T1 + 2000}"]
    with pytest.raises(ValueError, match="bad record"):
        ssc.awaitTerminationOrTimeout(0)


class Point:
    """A class defined at module level: plain pickle handles its instances."""

    def __init__(self, x):
        self.x = x

    def __eq__(self, other):
        return isinstance(other, Point) and other.x == self.x


@pytest.mark.parametrize("serializer", ["pickle", "cloudpickle"])
def test_records_are_written_with_the_configured_serializer(tmp_path, serializer):
    conf = Conf().set("ember.serializer", serializer)
    with Context("inline", "objectfile-serializer", conf=conf) as sc:
        ObjectFileSink(str(tmp_path / "p")).write_batch(sc.parallelize([Point(1), Point(2)]), T1)
        assert sc.pickleFile(str(tmp_path / f"p-{T1}")).collect() == [Point(1), Point(2)]


def test_a_record_the_serializer_cannot_write_fails_the_batch_and_leaves_nothing(
    ember_context, out
):
    import threading

    sink = ObjectFileSink(str(out / "locks"))
    with pytest.raises(Exception, match="lock"):
        sink.write_batch(ember_context.parallelize([1, threading.Lock()], 1), T1)
    assert os.listdir(out) == []


@pytest.mark.parametrize(
    ("prefix", "error", "message"),
    [
        ("", ValueError, "must not be empty"),
        (None, TypeError, "got NoneType"),
        (3.5, TypeError, "got float: 3.5"),
        (b"out", TypeError, "got bytes"),
    ],
)
def test_a_bad_prefix_is_refused_when_the_output_operation_is_defined(
    ssc, prefix, error, message
):
    stream = ssc.queueStream([["a"]])
    with pytest.raises(error, match=message) as info:
        stream.saveAsObjectFiles(prefix)
    assert "saveAsObjectFiles' prefix" in str(info.value)


@pytest.mark.parametrize(("suffix", "error"), [(["pkl"], TypeError), ("x/y", ValueError)])
def test_a_bad_suffix_is_refused(suffix, error):
    with pytest.raises(error, match="suffix"):
        ObjectFileSink("out/events", suffix)


def test_the_sink_is_plain_configuration_that_pickles_and_compares(tmp_path):
    sink = ObjectFileSink(tmp_path / "e", "pkl")
    assert pickle.loads(pickle.dumps(sink)) == sink
    assert sink.path_for(7) == f"{tmp_path}/e-7.pkl"
    assert sink.describe() == f"object files {tmp_path}/e-TIME_IN_MS.pkl"
