"""The write-ahead log on real files: framing, rolling, torn tails, corruption, cleaning,
fsync policies and the pluggable implementation (:mod:`ember.wal`)."""

from __future__ import annotations

import logging
import os
import sys
import textwrap

import ember.wal as walmod
import pytest
from ember import Conf
from ember.wal import (
    FRAME_SIZE,
    FileWriteAheadLog,
    WALCorruptionError,
    WALError,
    WALRecordHandle,
    WriteAheadLog,
    create_write_ahead_log,
)


def payload(i: int) -> bytes:
    return f"record {i} ".encode() * (i % 7 + 1)


def fill(directory, n: int = 10, start_ms: int = 1_000, step_ms: int = 100,
         **options) -> list[WALRecordHandle]:
    with FileWriteAheadLog(str(directory), **options) as wal:
        return [wal.write(payload(i), start_ms + i * step_ms) for i in range(n)]


def all_payloads(directory) -> list[bytes]:
    with FileWriteAheadLog(str(directory)) as wal:
        return [r.data for r in wal.readAll()]


# ---------------------------------------------------------------------- writing, reading
def test_records_read_back_by_handle_and_all_in_write_order(tmp_path):
    with FileWriteAheadLog(str(tmp_path), rolling_interval_s=0.35) as wal:
        handles = [wal.write(payload(i), 1_000 + 100 * i) for i in range(12)]
        assert [wal.read(h) for h in handles] == [payload(i) for i in range(12)]
        records = list(wal.readAll())
    assert [r.handle for r in records] == handles
    assert handles == sorted(handles)
    assert [h.time_ms for h in handles] == [1_000 + 100 * i for i in range(12)]
    assert all(h.length == FRAME_SIZE + len(payload(i)) for i, h in enumerate(handles))


def test_write_many_is_one_group_commit_read_back_like_single_writes(tmp_path, monkeypatch):
    syncs: list[int] = []
    real = walmod._datasync
    monkeypatch.setattr(walmod, "_datasync", lambda fd: (syncs.append(fd), real(fd)))
    with FileWriteAheadLog(str(tmp_path), fsync="always") as wal:
        first = wal.write(payload(0), 1_000)
        syncs.clear()
        group = wal.write_many([[payload(i)[:3], payload(i)[3:]] for i in range(1, 6)], 1_100)
        assert len(syncs) == 1, "one sync for the whole group"
        assert [wal.read(h) for h in group] == [payload(i) for i in range(1, 6)]
        assert [first, *group] == sorted([first, *group])
        path, offset = wal.location(group[2])
        with open(path, "rb") as f:
            f.seek(offset)
            assert f.read(len(payload(3))) == payload(3), "location() is the record's bytes"
    assert all_payloads(tmp_path) == [payload(i) for i in range(6)]


def test_the_base_class_writes_a_group_record_by_record(tmp_path):
    written: list[bytes] = []

    class Minimal(WriteAheadLog):
        def write(self, record, time_ms):
            written.append(record)
            return WALRecordHandle(0, len(written), len(record), time_ms)

        def read(self, handle):
            return written[handle.offset - 1]

        def readAll(self):
            return iter(())

        def clean(self, threshold_ms):
            pass

        def close(self):
            pass

    wal = Minimal()
    handles = wal.write_many([[b"a", b"b"], [b"c"]], 5)
    assert written == [b"ab", b"c"] and [wal.read(h) for h in handles] == [b"ab", b"c"]
    assert wal.location(handles[0]) is None


def test_segments_roll_by_record_time_and_are_named_by_it(tmp_path):
    fill(tmp_path, n=10, start_ms=0, step_ms=250, rolling_interval_s=1)
    names = sorted(os.listdir(tmp_path))
    assert names == ["log-0000000000-0-1000", "log-0000000001-1000-2000",
                     "log-0000000002-2000-3000"]


def test_a_reopened_log_writes_a_new_segment_and_keeps_the_old_records(tmp_path):
    first = fill(tmp_path, n=3)
    with FileWriteAheadLog(str(tmp_path)) as wal:
        later = wal.write(b"after restart", 1_100)  # a time inside the old segment's span
        assert later.segment == first[-1].segment + 1
        assert later > first[-1]
        assert [r.data for r in wal.readAll()] == [payload(i) for i in range(3)] + [b"after restart"]


def test_writing_to_a_closed_log_is_an_error(tmp_path):
    wal = FileWriteAheadLog(str(tmp_path))
    wal.close()
    wal.close()  # idempotent
    with pytest.raises(WALError, match="closed"):
        wal.write(b"x", 1)


def test_a_failed_write_leaves_no_partial_record(tmp_path, monkeypatch):
    real = walmod._write_all
    with FileWriteAheadLog(str(tmp_path)) as wal:
        wal.write(b"good 1", 1_000)

        def broken(fd, buffers):
            os.write(fd, bytes(buffers[0])[:5])
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(walmod, "_write_all", broken)
        with pytest.raises(OSError, match="No space"):
            wal.write(b"lost", 1_001)
        monkeypatch.setattr(walmod, "_write_all", real)
        wal.write(b"good 2", 1_002)
    assert all_payloads(tmp_path) == [b"good 1", b"good 2"]


# ---------------------------------------------------------------------- torn tails
def newest(directory) -> str:
    return str(sorted(directory.glob("log-*"))[-1])


@pytest.mark.parametrize("cut", [1, FRAME_SIZE - 3, FRAME_SIZE, FRAME_SIZE + 2])
def test_a_torn_last_record_is_cut_and_the_rest_kept(tmp_path, caplog, cut):
    handles = fill(tmp_path, n=5)
    path = newest(tmp_path)
    last = handles[-1]
    os.truncate(path, last.offset + cut)  # the crash came in the middle of the last write
    with caplog.at_level(logging.WARNING, "ember.streaming"):
        assert all_payloads(tmp_path) == [payload(i) for i in range(4)]
    assert os.path.getsize(path) == last.offset
    assert f"offset {last.offset}" in caplog.text and path in caplog.text


def test_a_zero_filled_tail_is_cut(tmp_path):
    fill(tmp_path, n=3)
    path = newest(tmp_path)
    size = os.path.getsize(path)
    with open(path, "ab") as f:
        f.write(b"\0" * 4096)  # pages the machine's crash left unwritten
    assert all_payloads(tmp_path) == [payload(i) for i in range(3)]
    assert os.path.getsize(path) == size


def test_a_last_record_with_a_bad_checksum_is_a_torn_tail(tmp_path):
    handles = fill(tmp_path, n=3)
    path = newest(tmp_path)
    with open(path, "r+b") as f:
        f.seek(handles[-1].offset + handles[-1].length - 1)
        f.write(b"\xff")
    assert all_payloads(tmp_path) == [payload(0), payload(1)]


def test_a_torn_segment_header_removes_the_empty_segment(tmp_path):
    fill(tmp_path, n=2)
    (tmp_path / "log-0000000001-5000-65000").write_bytes(b"EMBER-W")
    assert all_payloads(tmp_path) == [payload(0), payload(1)]
    assert not (tmp_path / "log-0000000001-5000-65000").exists()


def test_a_new_segment_after_a_torn_tail_keeps_everything(tmp_path):
    handles = fill(tmp_path, n=4)
    os.truncate(newest(tmp_path), handles[-1].offset + 7)
    with FileWriteAheadLog(str(tmp_path)) as wal:
        wal.write(b"next run", 9_000)
    with FileWriteAheadLog(str(tmp_path)) as wal:
        assert [r.data for r in wal.readAll()] == [payload(i) for i in range(3)] + [b"next run"]


# ---------------------------------------------------------------------- corruption
def flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x55]))


@pytest.mark.parametrize("where", ["payload", "length", "time"])
def test_a_corrupt_record_in_the_middle_is_reported_with_segment_and_offset(tmp_path, where):
    handles = fill(tmp_path, n=6)
    bad = handles[2]
    path = newest(tmp_path)
    size = os.path.getsize(path)
    flip(path, bad.offset + {"payload": FRAME_SIZE + 3, "length": 3, "time": 7}[where])
    with FileWriteAheadLog(str(tmp_path)) as wal:  # opening does not cut what is not a tail
        assert os.path.getsize(path) == size
        records = wal.readAll()
        assert next(records).data == payload(0)
        assert next(records).data == payload(1)
        with pytest.raises(WALCorruptionError) as info:
            next(records)
        assert info.value.segment == path
        assert info.value.offset == bad.offset
        assert path in str(info.value) and f"offset {bad.offset}" in str(info.value)
        with pytest.raises(WALCorruptionError, match=f"offset {bad.offset}"):
            wal.read(bad)
        assert wal.read(handles[3]) == payload(3)  # the records around it are intact


def test_an_older_segment_cut_short_is_corruption_not_a_torn_tail(tmp_path):
    handles = fill(tmp_path, n=8, start_ms=0, step_ms=250, rolling_interval_s=1)
    first = str(sorted(tmp_path.glob("log-*"))[0])
    os.truncate(first, handles[2].offset + 5)
    with FileWriteAheadLog(str(tmp_path)) as wal:
        with pytest.raises(WALCorruptionError, match="offset"):
            list(wal.readAll())
    assert os.path.getsize(first) == handles[2].offset + 5  # never cut


def test_a_segment_of_another_format_is_refused(tmp_path):
    fill(tmp_path, n=1)
    path = newest(tmp_path)
    data = open(path, "rb").read().replace(b'"format": 1', b'"format": 9')
    open(path, "wb").write(data)
    with pytest.raises(WALError, match="format 9"):
        FileWriteAheadLog(str(tmp_path))


def test_reading_a_cleaned_record_names_its_segment(tmp_path):
    with FileWriteAheadLog(str(tmp_path), rolling_interval_s=1) as wal:
        old = wal.write(b"old", 0)
        wal.write(b"new", 5_000)
        wal.clean(2_000)
        with pytest.raises(WALError, match="segment 0"):
            wal.read(old)


# ---------------------------------------------------------------------- cleaning
def test_clean_deletes_only_segments_entirely_older_than_the_threshold(tmp_path):
    with FileWriteAheadLog(str(tmp_path), rolling_interval_s=1) as wal:
        handles = [wal.write(payload(i), i * 400) for i in range(10)]  # 0 … 3600 ms
        # segments [0, 1000) [1200, 2200) [2400, 3400) [3600, 4600)
        wal.clean(2_199)  # [1200, 2200) may still hold a record at 2199: kept
        assert [r.handle for r in wal.readAll()] == handles[3:]
        wal.clean(2_200)
        assert [r.handle for r in wal.readAll()] == handles[6:]
        wal.clean(10**9)  # never the segment being written
        assert [r.handle for r in wal.readAll()] == handles[9:]
        wal.write(b"more", 3_700)
    assert len(list(tmp_path.glob("log-*"))) == 1


# ---------------------------------------------------------------------- fsync policies
@pytest.fixture
def syncs(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(walmod, "_datasync", lambda fd: calls.append(fd))
    return calls


def test_fsync_always_syncs_every_record_before_write_returns(tmp_path, syncs):
    with FileWriteAheadLog(str(tmp_path), fsync="always") as wal:
        for i in range(5):
            wal.write(b"x", i)
            assert len(syncs) == i + 1


def test_fsync_interval_syncs_at_most_once_an_interval(tmp_path, syncs):
    with FileWriteAheadLog(str(tmp_path), fsync="interval", fsync_interval_s=3600) as wal:
        for i in range(50):
            wal.write(b"x", i)
        assert len(syncs) == 0
    assert len(syncs) == 1  # close makes the rest durable


def test_fsync_never_leaves_it_to_the_system(tmp_path, syncs):
    with FileWriteAheadLog(str(tmp_path), fsync="never") as wal:
        for i in range(5):
            wal.write(b"x", i)
    assert syncs == []
    assert len(all_payloads(tmp_path)) == 5


def test_a_bad_fsync_policy_is_refused():
    with pytest.raises(WALError, match="always, interval, never"):
        FileWriteAheadLog("/nonexistent", fsync="sometimes")


# ---------------------------------------------------------------------- configuration
def test_the_file_log_reads_its_settings_from_the_conf_and_spark_aliases(tmp_path):
    conf = Conf().set("spark.streaming.receiver.writeAheadLog.rollingIntervalSecs", "2s")
    conf.set("spark.streaming.receiver.writeAheadLog.fsync", "interval")
    conf.set("ember.streaming.receiver.writeAheadLog.fsyncIntervalSecs", "250ms")
    wal = create_write_ahead_log(str(tmp_path), conf)
    assert isinstance(wal, FileWriteAheadLog)
    assert (wal.rolling_ms, wal.fsync, wal.fsync_interval_s) == (2_000, "interval", 0.25)
    wal.close()
    assert walmod.is_enabled(Conf().set("spark.streaming.receiver.writeAheadLog.enable", "true"))
    assert not walmod.is_enabled(Conf())


MEMORY_WAL = '''
from ember.wal import WALRecord, WALRecordHandle, WriteAheadLog

class MemoryWAL(WriteAheadLog):
    opened = []

    def __init__(self, directory, label):
        self.directory, self.label, self.records = directory, label, []
        MemoryWAL.opened.append(self)

    @classmethod
    def from_conf(cls, directory, conf):
        return cls(directory, conf.get("test.label"))

    def write(self, record, time_ms):
        handle = WALRecordHandle(0, len(self.records), len(record), time_ms)
        self.records.append(WALRecord(handle, bytes(record)))
        return handle

    def read(self, handle):
        return self.records[handle.offset].data

    def readAll(self):
        return iter(list(self.records))

    def clean(self, threshold_ms):
        self.records = [r for r in self.records if r.handle.time_ms >= threshold_ms]

    def close(self):
        pass

class NotALog:
    pass
'''


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    (tmp_path / "memory_wal_plugin.py").write_text(textwrap.dedent(MEMORY_WAL))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "memory_wal_plugin"
    sys.modules.pop("memory_wal_plugin", None)


def test_another_implementation_is_named_by_module_and_class(tmp_path, plugin_module):
    conf = Conf().set("spark.streaming.receiver.writeAheadLog.class",
                      f"{plugin_module}:MemoryWAL").set("test.label", "mine")
    wal = create_write_ahead_log(str(tmp_path / "d"), conf)
    assert type(wal).__name__ == "MemoryWAL" and wal.label == "mine"
    handle = wal.write(b"abc", 5)
    assert wal.read(handle) == b"abc"


@pytest.mark.parametrize(("name", "message"), [
    ("no_such_module_xyz:Log", "cannot be loaded"),
    ("memory_wal_plugin:Missing", "cannot be loaded"),
    ("memory_wal_plugin:NotALog", "not a subclass"),
])
def test_a_wrong_implementation_name_is_a_clear_error(tmp_path, plugin_module, name, message):
    conf = Conf().set(walmod.CLASS_KEY, name)
    with pytest.raises(WALError, match=message):
        create_write_ahead_log(str(tmp_path), conf)


def test_the_interface_is_abstract():
    with pytest.raises(TypeError):
        WriteAheadLog()  # type: ignore[abstract]
