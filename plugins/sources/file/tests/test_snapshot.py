"""The file source driven directly (``start``/``compute``/``snapshot``/``restore``), as the
streaming scheduler and checkpoint recovery drive it; and its configuration checks."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import cloudpickle
import pytest
from ember import Context
from ember.errors import TaskError
from ember.streaming import StreamingContext
from ember.testing import ManualClock
from ember_file import SNAPSHOT_FORMAT, FileSource, FileStreamError, default_filter


@pytest.fixture
def sc(ember_context: Context, ember_master: str, ember_no_leaks) -> Context:
    return ember_context


@pytest.fixture
def ssc(ember_context: Context) -> StreamingContext:
    return StreamingContext(ember_context, 1.0, clock=ManualClock())


@pytest.fixture
def watched(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    (tmp_path / "staging").mkdir()
    return d


def drop(directory: Path, name: str, content: str) -> None:
    staged = directory.parent / "staging" / name
    staged.write_text(content)
    os.rename(staged, directory / name)


@pytest.fixture
def sources():
    made: list[FileSource] = []

    def make(*args, **kwargs) -> FileSource:
        src = FileSource(*args, **kwargs)
        made.append(src)
        return src

    yield make
    for src in made:
        src.stop()


def lines(ssc: StreamingContext, source: FileSource, t: int) -> list[str]:
    rdd, _ = source.compute(ssc, t)
    return rdd.collect()


def test_restored_source_reads_only_files_that_arrived_after_the_snapshot(
        sc, ssc, sources, watched):
    first = sources(str(watched))
    first.start(ssc)
    drop(watched, "a.txt", "a\n")
    drop(watched, "b.txt", "b\n")
    assert lines(ssc, first, 1000) == ["a", "b"]
    drop(watched, "c.txt", "c\n")
    assert lines(ssc, first, 2000) == ["c"]
    state = json.loads(json.dumps(first.snapshot()))  # plain data, JSON-safe
    first.stop()

    drop(watched, "d.txt", "d\n")  # arrived while the driver was down
    second = sources(str(watched))
    second.restore(state)
    second.start(ssc)
    drop(watched, "e.txt", "e\n")
    assert lines(ssc, second, 3000) == ["d", "e"]
    assert lines(ssc, second, 4000) == []


def test_recovery_re_runs_an_incomplete_batch_with_the_same_files(sc, ssc, sources, watched):
    """The off-by-one rule: the snapshot saved with batch t's metadata is taken after
    compute(t); re-running t after recovery still finds t's files."""
    first = sources(str(watched))
    first.start(ssc)
    drop(watched, "a.txt", "a\n")
    assert lines(ssc, first, 1000) == ["a"]
    drop(watched, "b.txt", "b1\nb2\n")
    assert lines(ssc, first, 2000) == ["b1", "b2"]
    state = first.snapshot()  # saved with batch 2000; then the driver dies mid-batch
    assert state["last_time_ms"] == 2000
    assert dict((t, [os.path.basename(p) for p, _ in f]) for t, f in state["batches"]) == {
        1000: ["a.txt"], 2000: ["b.txt"]}

    drop(watched, "c.txt", "c\n")
    second = sources(str(watched))
    second.restore(pickle.loads(pickle.dumps(state)))
    second.start(ssc)
    assert lines(ssc, second, 1000) == ["a"]  # both were pending: re-run as they were
    assert lines(ssc, second, 2000) == ["b1", "b2"]
    assert lines(ssc, second, 3000) == ["c"]
    assert lines(ssc, second, 4000) == []


def test_a_batch_time_forgotten_or_in_the_past_is_refused(sc, ssc, sources, watched):
    src = sources(str(watched))
    src.start(ssc)
    lines(ssc, src, 2000)
    with pytest.raises(FileStreamError, match="batch 1000 ms was computed before"):
        src.compute(ssc, 1000)


def test_restored_batches_can_all_be_recomputed_until_forgotten(sc, ssc, sources, watched):
    first = sources(str(watched))
    first.start(ssc)
    for t in (1000, 2000, 3000):
        drop(watched, f"{t}.txt", f"{t}\n")
        lines(ssc, first, t)
    state = first.snapshot()
    second = sources(str(watched))
    second.restore(state)
    second.start(ssc)
    # recovery recomputes from the last saved state: every remembered batch replays
    assert lines(ssc, second, 2000) == ["2000"]
    assert lines(ssc, second, 3000) == ["3000"]
    assert lines(ssc, second, 4000) == []
    second.forget(3000)
    assert [t for t, _ in second.snapshot()["batches"]] == [3000, 4000]


def test_forget_prunes_the_batches_kept_for_recovery(sc, ssc, sources, watched):
    src = sources(str(watched))
    src.start(ssc)
    for t in range(1000, 11000, 1000):
        drop(watched, f"{t}.txt", "x\n")
        lines(ssc, src, t)
        src.forget(t - 2000)  # what the input stream does with a 2 s remember window
        kept = [b for b, _ in src.snapshot()["batches"]]
        assert kept == [b for b in (t - 2000, t - 1000, t) if b >= 1000]


def test_snapshot_restore_keeps_the_memory_of_seen_files(sc, ssc, sources, watched):
    drop(watched, "old.txt", "old\n")
    first = sources(str(watched), newFilesOnly=True)
    first.start(ssc)
    state = first.snapshot()
    assert state["format"] == SNAPSHOT_FORMAT
    assert [os.path.basename(s[0]) for s in state["seen"]] == ["old.txt"]
    second = sources(str(watched), newFilesOnly=False)  # recovery: no initial listing
    second.restore(state)
    second.start(ssc)
    assert lines(ssc, second, 1000) == []


def test_restore_refuses_foreign_data(sources, watched, tmp_path):
    src = sources(str(watched))
    with pytest.raises(ValueError, match="not a file stream snapshot"):
        src.restore({"offset": 3})
    other = tmp_path / "other"
    other.mkdir()
    state = sources(str(other)).snapshot()
    with pytest.raises(ValueError, match=r"snapshot is of the file stream of .*other"):
        src.restore(state)


def test_a_file_removed_before_the_workers_read_it_fails_the_job_naming_it(
        sc, ssc, sources, watched):
    src = sources(str(watched))
    src.start(ssc)
    drop(watched, "gone.txt", "gone\n")
    rdd, _ = src.compute(ssc, 1000)
    os.remove(watched / "gone.txt")
    with pytest.raises((OSError, TaskError), match=r"gone\.txt"):
        rdd.collect()


def test_a_source_survives_pickling_with_its_state(sc, ssc, sources, watched):
    src = sources(str(watched), filter=lambda p: p.endswith(".txt"))
    src.start(ssc)
    drop(watched, "a.txt", "a\n")
    assert lines(ssc, src, 1000) == ["a"]
    copy = cloudpickle.loads(cloudpickle.dumps(src))
    assert copy.snapshot() == src.snapshot()
    drop(watched, "b.txt", "b\n")
    assert lines(ssc, copy, 2000) == ["b"]


def test_without_start_the_first_batch_skips_files_already_present(sc, ssc, sources, watched):
    drop(watched, "pre.txt", "pre\n")
    src = sources(str(watched))
    assert lines(ssc, src, 1000) == []
    drop(watched, "post.txt", "post\n")
    assert lines(ssc, src, 2000) == ["post"]


# --------------------------------------------------------------------------- configuration


def test_the_configuration_is_checked_when_the_source_is_built(tmp_path):
    d = str(tmp_path)
    with pytest.raises(TypeError, match="needs a directory path"):
        FileSource(3)
    with pytest.raises(TypeError, match="needs a directory path"):
        FileSource("  ")
    for bad in (0, -4, 2.5, True, "8"):
        with pytest.raises(ValueError, match="recordLength must be an integer >= 1"):
            FileSource(d, recordLength=bad)
    with pytest.raises(ValueError, match="onError must be 'fail', 'skip-and-report'"):
        FileSource(d, onError="ignore")
    for bad in (-1, "60", True, float("nan")):
        with pytest.raises(ValueError, match="remember must be a number of seconds"):
            FileSource(d, remember=bad)
    with pytest.raises(TypeError):
        FileSource(d, filter="*.txt")
    with pytest.raises(TypeError):
        FileSource(d, newFilesOnly="yes")


def test_the_directory_is_made_absolute_and_building_touches_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = FileSource("not-there-yet")
    assert src.directory == str(tmp_path / "not-there-yet")
    assert not (tmp_path / "not-there-yet").exists()
    assert FileSource(tmp_path).directory == str(tmp_path)
    assert src.describe() == f"file stream of {tmp_path / 'not-there-yet'} (text lines)"


def test_the_default_filter_skips_hidden_and_underscore_names():
    assert default_filter("/a/b/data.txt")
    assert default_filter("/a/_b/data.txt")  # only the file's own name counts
    assert not default_filter("/a/b/.data.txt")
    assert not default_filter("/a/b/_SUCCESS")
