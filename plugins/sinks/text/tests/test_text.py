"""ember-text's own behaviour: end to end from a stream, and its argument checking."""

from __future__ import annotations

import os
import pickle

import pytest
from ember.plugins import load_component
from ember.streaming import StreamingContext
from ember.testing import ManualClock, advance_batches
from ember_text import TextSink

START = 1_700_000_000.0  # the manual clock's start (s); the first batch is one interval later
T1 = 1_700_000_001_000  # the first batch time (ms) with a 1 s interval


def read_lines(directory):
    """The lines of a batch directory's part files, in part order (no engine involved)."""
    lines = []
    for name in sorted(os.listdir(directory)):
        if name.startswith("part-"):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                lines.extend(f.read().splitlines())
    return lines


@pytest.fixture
def out(tmp_path):
    """Where a test's batches go (tmp_path also holds the context's checkpoint directory)."""
    return tmp_path / "out"


@pytest.fixture
def ssc(ember_context):
    ssc = StreamingContext(ember_context, 1.0, clock=ManualClock(START))
    yield ssc
    ssc.stop(stopSparkContext=False)


def test_it_is_registered_as_the_text_sink():
    assert load_component("sinks", "text") is TextSink


def test_save_as_text_files_writes_exactly_one_directory_per_batch(ssc, out, ember_master):
    batches = [["to be", "or not"], ["to be"], []]
    words = ssc.queueStream(batches).flatMap(str.split)
    words.map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b, 1).saveAsTextFiles(
        str(out / "counts"))
    ssc.start()
    advance_batches(ssc, 4)
    times = [T1 + 1000 * k for k in range(4)]
    assert sorted(os.listdir(out)) == [f"counts-{t}" for t in times]
    for t in times:
        assert os.path.exists(out / f"counts-{t}" / "_SUCCESS")
    got = [sorted(read_lines(out / f"counts-{t}")) for t in times]
    assert got == [
        ["('be', 1)", "('not', 1)", "('or', 1)", "('to', 1)"],
        ["('be', 1)", "('to', 1)"],
        [],  # an empty queue item: an empty batch directory, as in Spark
        [],  # the queue ran dry: empty batches go on
    ]


def test_the_suffix_ends_each_directory_name(ssc, out):
    ssc.queueStream([["a"], ["b"]]).saveAsTextFiles(str(out / "lines"), "txt")
    ssc.start()
    advance_batches(ssc, 2)
    assert sorted(os.listdir(out)) == [f"lines-{T1}.txt", f"lines-{T1 + 1000}.txt"]
    assert read_lines(out / f"lines-{T1 + 1000}.txt") == ["b"]


def test_each_batch_reads_back_with_text_file(ssc, out, ember_context):
    ssc.queueStream([[1, 2, 3], [4]]).map(lambda x: x * 10).saveAsTextFiles(str(out / "n"))
    ssc.start()
    advance_batches(ssc, 2)
    assert ember_context.textFile(str(out / f"n-{T1}")).collect() == ["10", "20", "30"]
    assert ember_context.textFile(str(out / f"n-{T1 + 1000}")).collect() == ["40"]


def test_a_failing_batch_writes_nothing_and_later_batches_are_still_written(ssc, out):
    def check(x):
        if x == "bad":
            raise ValueError("bad record")
        return x

    ssc.queueStream([["ok"], ["bad"], ["fine"]]).map(check).saveAsTextFiles(str(out / "o"))
    ssc.start()
    advance_batches(ssc, 3)
    assert sorted(os.listdir(out)) == [f"o-{T1}", f"o-{T1 + 2000}"]
    assert read_lines(out / f"o-{T1 + 2000}") == ["fine"]
    with pytest.raises(ValueError, match="bad record"):
        ssc.awaitTerminationOrTimeout(0)


def test_a_string_with_a_line_break_becomes_several_lines(ember_context, out):
    TextSink(str(out / "t")).write_batch(ember_context.parallelize(["a\nb", b"raw"]), T1)
    assert read_lines(out / f"t-{T1}") == ["a", "b", "raw"]


def test_a_path_object_and_a_home_relative_prefix_are_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert TextSink(tmp_path / "p").path_for(5) == f"{tmp_path}/p-5"
    assert TextSink("~/q", "txt").path_for(5) == f"{tmp_path}/q-5.txt"


@pytest.mark.parametrize(
    ("prefix", "error", "message"),
    [
        ("", ValueError, "must not be empty"),
        ("   ", ValueError, "must not be empty"),
        (None, TypeError, "got NoneType"),
        (42, TypeError, "got int: 42"),
        (b"out/words", TypeError, "got bytes"),
        ("out/\x00", ValueError, "NUL"),
    ],
)
def test_a_bad_prefix_is_refused_when_the_output_operation_is_defined(
    ssc, prefix, error, message
):
    stream = ssc.queueStream([["a"]])
    with pytest.raises(error, match=message) as info:
        stream.saveAsTextFiles(prefix)
    assert "prefix" in str(info.value)


@pytest.mark.parametrize(("suffix", "error"), [(3, TypeError), ("a/b", ValueError)])
def test_a_bad_suffix_is_refused(suffix, error):
    with pytest.raises(error, match="suffix"):
        TextSink("out/words", suffix)


def test_the_sink_is_plain_configuration_that_pickles_and_compares(tmp_path):
    sink = TextSink(str(tmp_path / "w"), "txt")
    assert pickle.loads(pickle.dumps(sink)) == sink
    assert sink.describe() == f"text files {tmp_path}/w-TIME_IN_MS.txt"
    assert TextSink("w", "").suffix is None
