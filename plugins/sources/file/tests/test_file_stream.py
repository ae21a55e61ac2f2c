"""The file source end to end: real files in a temporary directory, batches driven by a
ManualClock (``advance_batches``), on the inline and ``local[2]`` executors, no sleeps.

Files arrive the way they must: written in a staging directory beside the watched one, then
renamed in.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from ember import Context
from ember.plugins import load_component
from ember.sources import Delivery
from ember.streaming import StreamingContext, StreamingListener
from ember.testing import ManualClock, advance_batches
from ember_file import FileSource, FileStreamError

OLD = 978_307_200  # 2001-01-01: the modification time of files "moved in from an archive"


@pytest.fixture
def sc(ember_context: Context, ember_master: str, ember_no_leaks) -> Context:
    return ember_context


@pytest.fixture
def watched(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    (tmp_path / "staging").mkdir()
    return d


def drop(directory: Path, name: str, content: str | bytes, mtime: float | None = None) -> Path:
    """Write ``name`` beside ``directory`` and rename it in, as a file must arrive."""
    staged = directory.parent / "staging" / name
    if isinstance(content, str):
        staged.write_text(content, encoding="utf-8")
    else:
        staged.write_bytes(content)
    if mtime is not None:
        os.utime(staged, (mtime, mtime))
    target = directory / name
    os.rename(staged, target)
    return target


class Counts(StreamingListener):
    """Records each batch's number of input records."""

    def __init__(self) -> None:
        self.records: dict[int, int] = {}

    def onBatchCompleted(self, batchCompleted) -> None:
        info = batchCompleted.batchInfo()
        self.records[info.batch_time] = sum(
            i.numRecords() for i in info.stream_id_to_input_info.values()
        )


class Run:
    """One streaming context on a manual clock, collecting each batch's records."""

    def __init__(self, sc: Context, make, **kwargs) -> None:
        self.ssc = StreamingContext(sc, 1.0, clock=ManualClock())
        self.stream = make(self.ssc, **kwargs)
        self.source: FileSource = self.stream.source
        self.batches: dict[int, list] = {}
        self.stream.foreachRDD(
            lambda t, rdd: self.batches.__setitem__(round(t.timestamp() * 1000), rdd.collect())
        )
        self.counts = Counts()
        self.ssc.addStreamingListener(self.counts)

    def start(self) -> Run:
        self.ssc.start()
        return self

    def batch(self) -> list:
        """Run the next batch; its records (``None`` if it failed before running)."""
        advance_batches(self.ssc, 1)
        return self.batches.get(self.ssc.clock.now_ms())

    def error(self) -> BaseException | None:
        try:
            self.ssc.awaitTerminationOrTimeout(0)
        except Exception as exc:
            return exc
        return None

    def stop(self) -> None:
        self.ssc.stop(stopSparkContext=False)


@pytest.fixture
def run(sc):
    runs: list[Run] = []

    def make(builder=None, **kwargs) -> Run:
        r = Run(sc, builder or (lambda ssc, **kw: ssc.stream("file", **kw)), **kwargs)
        runs.append(r)
        return r

    yield make
    for r in runs:
        r.stop()


# --------------------------------------------------------------------------- text streams


def test_text_file_stream_gives_each_batch_the_lines_of_its_new_files(run, watched):
    r = run(lambda ssc: ssc.textFileStream(str(watched))).start()
    drop(watched, "a.txt", "a1\na2\n")
    drop(watched, "b.txt", "b1\nb2\nb3")  # no final line break
    assert r.batch() == ["a1", "a2", "b1", "b2", "b3"]
    assert r.batch() == []
    drop(watched, "c.txt", "c1\n\nc3\n")
    assert r.batch() == ["c1", "", "c3"]
    drop(watched, "d.txt", "")
    drop(watched, "e.txt", "é ü ✓\r\n")
    assert r.batch() == ["é ü ✓"]
    assert r.batch() == []
    assert r.error() is None
    assert set(r.counts.records.values()) == {0}  # text: not counted (documented)


def test_each_file_is_read_once_while_it_stays_in_the_directory(run, watched):
    r = run(lambda ssc: ssc.textFileStream(str(watched))).start()
    seen: list[str] = []
    for i in range(6):
        for j in range(i % 3):
            drop(watched, f"f{i}-{j}.txt", f"line {i}-{j}\n")
        batch = r.batch()
        assert batch == [f"line {i}-{j}" for j in range(i % 3)]
        seen += batch
    assert len(seen) == len(set(seen)) == 6
    assert r.batch() == []


def test_a_file_renamed_in_with_an_old_modification_time_is_read(run, watched):
    r = run(lambda ssc: ssc.textFileStream(str(watched))).start()
    drop(watched, "new.txt", "new\n")
    assert r.batch() == ["new"]
    drop(watched, "archived.txt", "from 2001\n", mtime=OLD)
    assert os.stat(watched / "archived.txt").st_mtime == OLD
    assert r.batch() == ["from 2001"]
    assert r.batch() == []


def test_files_present_at_start_are_skipped_and_later_ones_read(run, watched):
    drop(watched, "before.txt", "before\n")
    r = run(lambda ssc: ssc.fileStream(str(watched))).start()
    drop(watched, "after.txt", "after\n")
    assert r.batch() == ["after"]
    assert r.batch() == []


def test_new_files_only_false_takes_the_files_present_at_start(run, watched):
    drop(watched, "before.txt", "before\n")
    drop(watched, "older.txt", "older\n", mtime=OLD)
    r = run(lambda ssc: ssc.fileStream(str(watched), newFilesOnly=False)).start()
    assert r.batch() == ["before", "older"]
    drop(watched, "after.txt", "after\n")
    assert r.batch() == ["after"]
    assert r.batch() == []


def test_nested_directories_are_ignored(run, watched):
    r = run(lambda ssc: ssc.textFileStream(str(watched))).start()
    (watched / "sub").mkdir()
    (watched / "sub" / "inner.txt").write_text("inner\n")
    (watched / "looks-like-a-file.txt").mkdir()
    drop(watched, "top.txt", "top\n")
    assert r.batch() == ["top"]
    (watched / "sub" / "later.txt").write_text("later\n")
    assert r.batch() == []
    assert r.error() is None


def test_hidden_and_underscore_files_are_ignored(run, watched):
    r = run(lambda ssc: ssc.textFileStream(str(watched))).start()
    drop(watched, ".hidden.txt", "hidden\n")
    drop(watched, "_SUCCESS", "")
    drop(watched, "_part.txt", "underscore\n")
    drop(watched, "seen.txt", "visible\n")
    assert r.batch() == ["visible"]
    # the usual way to write in place: a hidden name, renamed when complete
    (watched / ".copying.txt").write_text("half")
    assert r.batch() == []
    with open(watched / ".copying.txt", "a") as f:
        f.write(" and done\n")
    os.rename(watched / ".copying.txt", watched / "copied.txt")
    assert r.batch() == ["half and done"]


def test_a_filter_chooses_the_files_and_replaces_the_default_one(run, watched):
    r = run(lambda ssc: ssc.fileStream(str(watched), filter=lambda p: p.endswith(".csv")))
    r.start()
    drop(watched, "a.csv", "1,2\n")
    drop(watched, "_b.csv", "3,4\n")  # the default filter would skip it; this one does not
    drop(watched, "c.txt", "no\n")
    assert r.batch() == ["3,4", "1,2"]  # files in name order
    assert r.batch() == []


def test_a_filter_that_raises_fails_the_batch_naming_the_path(run, watched):
    def picky(path: str) -> bool:
        if path.endswith(".bad"):
            raise RuntimeError("cannot judge")
        return True

    r = run(lambda ssc: ssc.fileStream(str(watched), filter=picky)).start()
    drop(watched, "x.bad", "x\n")
    assert r.batch() is None
    err = r.error()
    assert isinstance(err, FileStreamError)
    assert "filter raised for" in str(err) and "x.bad" in str(err)
    assert isinstance(err.__cause__, RuntimeError)


def test_odd_file_names_are_read_literally(run, watched):
    r = run(lambda ssc: ssc.textFileStream(str(watched))).start()
    drop(watched, "a,b.txt", "comma\n")
    drop(watched, "data[1].txt", "brackets\n")
    drop(watched, "star*.txt", "star\n")
    drop(watched, "sp ace.txt", "space\n")
    assert sorted(r.batch()) == ["brackets", "comma", "space", "star"]


def test_a_file_replaced_or_changed_after_it_was_read_is_read_again(run, watched, caplog):
    r = run(lambda ssc: ssc.textFileStream(str(watched))).start()
    drop(watched, "a.txt", "v1\n")
    assert r.batch() == ["v1"]
    drop(watched, "a.txt", "v2\n")  # renamed over the old one: a new file
    assert r.batch() == ["v2"]
    with caplog.at_level(logging.WARNING, logger="ember_file"):
        with open(watched / "a.txt", "a") as f:  # against the rules: changed in place
            f.write("appended\n")
        assert r.batch() == ["v2", "appended"]
    assert "a.txt changed after it was read" in caplog.text


def test_a_permission_change_on_a_file_already_read_does_not_read_it_again(run, watched):
    r = run(lambda ssc: ssc.textFileStream(str(watched))).start()
    drop(watched, "a.txt", "a\n")
    assert r.batch() == ["a"]
    os.chmod(watched / "a.txt", 0o600)  # moves st_ctime, not the file's identity
    assert r.batch() == []


def test_the_directory_may_appear_after_the_stream_starts(run, tmp_path):
    later = tmp_path / "later"
    r = run(lambda ssc: ssc.textFileStream(str(later))).start()
    assert r.batch() is None
    err = r.error()
    assert isinstance(err, FileStreamError) and "cannot list the directory" in str(err)
    later.mkdir()
    (tmp_path / "staging").mkdir()
    drop(later, "a.txt", "a\n")
    assert r.batch() == ["a"]


# --------------------------------------------------------------------------- binary records


def records(n: int, length: int, seed: int) -> list[bytes]:
    return [bytes((seed * 31 + i * 7 + j) % 256 for j in range(length)) for i in range(n)]


def test_binary_records_stream_gives_exact_records_and_counts_them(run, watched):
    r = run(lambda ssc: ssc.binaryRecordsStream(str(watched), 6)).start()
    a, b, c = records(5, 6, 1), records(300, 6, 2), records(1, 6, 3)
    drop(watched, "a.bin", b"".join(a))
    drop(watched, "b.bin", b"".join(b))
    assert r.batch() == a + b
    drop(watched, "c.bin", b"".join(c), mtime=OLD)
    drop(watched, "empty.bin", b"")
    assert r.batch() == c
    assert r.batch() == []
    times = sorted(r.counts.records)
    assert [r.counts.records[t] for t in times] == [305, 1, 0]


def test_a_binary_file_of_a_bad_size_fails_the_batch_and_nothing_is_lost(run, watched):
    r = run(lambda ssc: ssc.binaryRecordsStream(str(watched), 4)).start()
    good = records(3, 4, 1)
    drop(watched, "good.bin", b"".join(good))
    drop(watched, "bad.bin", b"0123456789")
    assert r.batch() is None
    err = r.error()
    assert isinstance(err, FileStreamError)
    assert "bad.bin: its size (10 bytes) is not a multiple of recordLength (4 bytes)" in str(err)
    assert [p.path for p in err.problems] == [str(watched / "bad.bin")]
    os.remove(watched / "bad.bin")  # the user fixes it; the good file was not consumed
    assert r.batch() == good


def test_skip_and_report_skips_a_bad_file_once_and_reports_it(run, watched, caplog):
    r = run(directory=str(watched), recordLength=4, onError="skip-and-report").start()
    good = records(2, 4, 5)
    drop(watched, "bad.bin", b"12345")
    drop(watched, "good.bin", b"".join(good))
    with caplog.at_level(logging.WARNING, logger="ember_file"):
        assert r.batch() == good
        assert r.batch() == []
    assert r.error() is None
    [problem] = r.source.problems
    assert problem.path == str(watched / "bad.bin")
    assert "not a multiple of recordLength" in problem.reason
    assert caplog.text.count("bad.bin") == 1  # reported once, not at every batch


# --------------------------------------------------------------------------- unreadable files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_reported_not_read(run, watched):
    r = run(lambda ssc: ssc.textFileStream(str(watched))).start()
    drop(watched, "ok.txt", "ok\n")
    os.mkfifo(watched / "pipe.txt")  # opening it for reading would block for ever
    assert r.batch() is None
    err = r.error()
    assert isinstance(err, FileStreamError)
    assert "pipe.txt: a FIFO (named pipe): file streams read regular files only" in str(err)
    os.remove(watched / "pipe.txt")
    assert r.batch() == ["ok"]


def test_a_file_that_vanishes_before_it_is_read_is_reported(run, watched):
    def vanish(path: str) -> bool:  # deletes the file between listing and reading
        if path.endswith("doomed.txt") and os.path.exists(path):
            os.remove(path)
        return True

    reported = []
    r = run(directory=str(watched), filter=vanish, onError=reported.append).start()
    drop(watched, "doomed.txt", "lost\n")
    drop(watched, "kept.txt", "kept\n")
    assert r.batch() == ["kept"]
    assert [(os.path.basename(p.path), p.reason.split(":")[0]) for p in reported] == [
        ("doomed.txt", "vanished before it could be read")
    ]
    assert r.source.problems == reported


def test_a_broken_symbolic_link_is_reported(run, watched, tmp_path):
    r = run(directory=str(watched), onError="skip-and-report").start()
    os.symlink(tmp_path / "nowhere.txt", watched / "link.txt")
    drop(watched, "real.txt", "real\n")
    assert r.batch() == ["real"]
    [problem] = r.source.problems
    assert problem.path.endswith("link.txt") and "broken symbolic link" in problem.reason
    assert r.batch() == []
    assert len(r.source.problems) == 1


def test_a_symbolic_link_to_an_old_file_is_read(run, watched, tmp_path):
    r = run(lambda ssc: ssc.textFileStream(str(watched))).start()
    target = tmp_path / "archive.txt"
    target.write_text("archived\n")
    os.utime(target, (OLD, OLD))
    os.symlink(target, watched / "link.txt")
    assert r.batch() == ["archived"]
    assert r.batch() == []


def test_an_error_handler_that_raises_fails_the_batch(run, watched):
    def strict(problem):
        raise RuntimeError(f"refusing {problem.path}")

    r = run(directory=str(watched), recordLength=2, onError=strict).start()
    drop(watched, "odd.bin", b"abc")
    assert r.batch() is None
    assert "refusing" in str(r.error())


# --------------------------------------------------------------------------- memory


def test_thousands_of_files_moved_away_after_processing_keep_memory_small(run, watched):
    r = run(lambda ssc: ssc.textFileStream(str(watched))).start()
    per_batch, total = 200, 0
    for i in range(12):
        names = [f"f{i:02d}-{j:03d}.txt" for j in range(per_batch)]
        for name in names:
            drop(watched, name, f"{name}\n")
        assert r.batch() == names
        total += len(names)
        assert r.source.remembered_files <= per_batch
        for name in names:  # the usual practice: processed files are moved away
            os.remove(watched / name)
    assert total == 2400
    assert r.batch() == []
    assert r.source.remembered_files == 0
    assert len(r.source.snapshot()["batches"]) <= 3  # completed batches are forgotten


def test_thousands_of_files_left_in_place_keep_memory_bounded(run, watched):
    # remember=0: only the newest arrivals are remembered; safe here because files arrive
    # strictly between listings (see the module doc of ember_file._tracker)
    r = run(directory=str(watched), remember=0.0).start()
    per_batch = 150
    for i in range(16):
        names = [f"f{i:02d}-{j:03d}.txt" for j in range(per_batch)]
        for name in names:
            drop(watched, name, f"{name}\n")
        assert r.batch() == names
        assert r.source.remembered_files <= per_batch
    assert len(os.listdir(watched)) == 2400
    drop(watched, "late.txt", "late\n", mtime=OLD)
    assert r.batch() == ["late"]
    assert r.batch() == []


# --------------------------------------------------------------------------- the plugin


def test_the_file_plugin_is_found_by_name_and_declares_its_guarantee():
    assert load_component("sources", "file") is FileSource
    assert FileSource.delivery is Delivery.AT_LEAST_ONCE
    assert FileSource.name == "file"
