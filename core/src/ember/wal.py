"""The write-ahead log of received data: the interface, and the default file implementation.

With ``ember.streaming.receiver.writeAheadLog.enable`` set to ``true``, every block a
receiver stores is appended to a write-ahead log under
``<checkpoint directory>/receivedData/<stream id>/`` *before* the store call returns, so a
reliable receiver acknowledges its source only for data that survives a driver crash. The
metadata checkpoint remembers which logged records belong to which batch; on restart
(``StreamingContext.getOrCreate``) they are read back and processed (the guide's "zero data
loss with reliable receivers").

The log is pluggable: :class:`WriteAheadLog` is the interface, :class:`FileWriteAheadLog`
the default; ``ember.streaming.receiver.writeAheadLog.class`` names another implementation
as ``"module:Class"``.

Configuration keys (the ``spark.`` forms are aliases):

``ember.streaming.receiver.writeAheadLog.enable`` (``false``)
    Log every received block.
``ember.streaming.receiver.writeAheadLog.class`` (empty: :class:`FileWriteAheadLog`)
    The implementation, ``"module:Class"``, a subclass of :class:`WriteAheadLog`.
``ember.streaming.receiver.writeAheadLog.rollingIntervalSecs`` (``60``)
    A new segment file every so many seconds of record time.
``ember.streaming.receiver.writeAheadLog.fsync`` (``always``)
    ``always``: every record is on disk (fsync) before ``write`` returns; ``interval``: at
    most every ``fsyncIntervalSecs`` (a crash of the machine may lose the last interval, a
    crash of the process loses nothing); ``never``: left to the operating system (safe
    against process crashes only).
``ember.streaming.receiver.writeAheadLog.fsyncIntervalSecs`` (``1``)
    The interval of the ``interval`` policy.

The file format of :class:`FileWriteAheadLog`: a directory of segment files
``log-<sequence>-<first ms>-<end ms>``, each a header line (``EMBER-WAL`` and a JSON stamp of
the format, ember and Python versions) followed by records framed as::

    b"WR" | length u32 | time ms i64 | payload crc32 u32 | header crc32 u32 | payload

A record cut short by a crash at the end of the newest segment (a *torn tail*) is found and
cut when the log is opened; the records before it are kept. A damaged record anywhere else
raises :class:`WALCorruptionError` naming its segment and offset: data is never dropped
silently.
"""

from __future__ import annotations

import glob
import importlib
import json
import logging
import os
import re
import struct
import sys
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ember._durable import fsync_dir

if TYPE_CHECKING:
    from ember.conf import Conf

__all__ = [
    "CLASS_KEY",
    "ENABLE_KEY",
    "FSYNC_INTERVAL_KEY",
    "FSYNC_KEY",
    "FSYNC_POLICIES",
    "ROLLING_INTERVAL_KEY",
    "FileWriteAheadLog",
    "WALCorruptionError",
    "WALError",
    "WALRecord",
    "WALRecordHandle",
    "WriteAheadLog",
    "create_write_ahead_log",
    "is_enabled",
]

log = logging.getLogger("ember.streaming")

#: Turns the write-ahead log of received data on.
ENABLE_KEY = "ember.streaming.receiver.writeAheadLog.enable"
#: The :class:`WriteAheadLog` implementation, ``"module:Class"``; empty for the file log.
CLASS_KEY = "ember.streaming.receiver.writeAheadLog.class"
#: Seconds of record time per segment file.
ROLLING_INTERVAL_KEY = "ember.streaming.receiver.writeAheadLog.rollingIntervalSecs"
#: ``always``, ``interval`` or ``never``.
FSYNC_KEY = "ember.streaming.receiver.writeAheadLog.fsync"
#: Seconds between fsyncs with the ``interval`` policy.
FSYNC_INTERVAL_KEY = "ember.streaming.receiver.writeAheadLog.fsyncIntervalSecs"
#: The fsync policies of :class:`FileWriteAheadLog`.
FSYNC_POLICIES = ("always", "interval", "never")

FORMAT_VERSION = 1
SEGMENT_MAGIC = b"EMBER-WAL\n"
_SEGMENT_NAME = re.compile(r"^log-(\d{10})-(-?\d+)-(-?\d+)$")
#: magic, payload length, record time, payload crc32 (the header's own crc32 follows).
_HEAD = struct.Struct("<2sIqI")
_HCRC = struct.Struct("<I")
FRAME_SIZE = _HEAD.size + _HCRC.size
RECORD_MAGIC = b"WR"
#: The largest record (the length field is 32 bits).
MAX_RECORD = 2**32 - 1


class WALError(RuntimeError):
    """The write-ahead log cannot do what was asked (closed, a record missing, bad config)."""


class WALCorruptionError(WALError):
    """A damaged record: the message names the segment file and the offset in it.

    :ivar segment: the segment (a file path for :class:`FileWriteAheadLog`).
    :ivar offset: the byte offset of the damaged record in the segment.
    """

    def __init__(self, segment: str, offset: int, reason: str) -> None:
        super().__init__(
            f"write-ahead log segment {segment} is damaged at offset {offset}: {reason}. "
            f"The records after it cannot be trusted; restore the segment from a copy, or "
            f"move it away to accept losing its records"
        )
        self.segment = segment
        self.offset = offset
        self.reason = reason


@attrs.frozen(order=True)
class WALRecordHandle:
    """Where one record is: its segment number and byte offset, its length and its time.

    Handles are ordered as their records were written (segment, then offset), are
    hashable and pickle small: the metadata checkpoint keeps them.

    :ivar segment: the segment number (increasing as segments roll).
    :ivar offset: the record's byte offset in the segment.
    :ivar length: the record's length in the segment, framing included.
    :ivar time_ms: the time given to :meth:`WriteAheadLog.write`.
    """

    segment: int
    offset: int
    length: int
    time_ms: int


@attrs.frozen
class WALRecord:
    """One record read back by :meth:`WriteAheadLog.readAll`: its handle and its bytes."""

    handle: WALRecordHandle
    data: bytes


class WriteAheadLog(ABC):
    """A durable, append-only log of records, one per receiver stream.

    Rules an implementation follows:

    - :meth:`write` returns only once the record is as durable as the implementation
      promises (the file log: on disk, with the default fsync policy); the handle it
      returns stays valid until :meth:`clean` removes the record.
    - Handles order as the records were written (segment, then offset).
    - :meth:`readAll` yields every record still in the log, oldest first, and raises on a
      damaged record rather than skipping it.
    - :meth:`clean` only removes records *all* of whose segment is older than the
      threshold; a record written at or after ``threshold_ms`` is always kept.
    - Calls may come from several threads (a receiver's, the block generator's, the
      scheduler's); the implementation serializes them.

    An implementation named by ``ember.streaming.receiver.writeAheadLog.class`` is built
    with :meth:`from_conf` (by default ``cls(directory)``).
    """

    @classmethod
    def from_conf(cls, directory: str, conf: Conf) -> WriteAheadLog:
        """Open the log in ``directory`` with the settings of ``conf``.

        :param directory: the stream's own directory (created if missing).
        :param conf: the application's configuration.
        """
        return cls(directory)  # type: ignore[call-arg]

    @abstractmethod
    def write(self, record: bytes, time_ms: int) -> WALRecordHandle:
        """Append ``record``, written at ``time_ms``; return where it is.

        :param record: the bytes to log.
        :param time_ms: the record's time (ms since the epoch); :meth:`clean` goes by it.
        :returns: the record's handle, for :meth:`read`.
        :raises WALError: when the log is closed or the record cannot be written.
        """

    def write_parts(self, parts: Sequence[bytes], time_ms: int) -> WALRecordHandle:
        """Append one record made of ``parts`` (as :meth:`write` of their concatenation).

        The default joins them and calls :meth:`write`; an implementation that can write
        several buffers at once overrides it to spare the copy (the file log does: a block's
        payload is written as it is, after a small header).
        """
        return self.write(b"".join(parts), time_ms)

    def write_many(self, records: Sequence[Sequence[bytes]],
                   time_ms: int) -> list[WALRecordHandle]:
        """Append several records (each made of parts, as for :meth:`write_parts`) at once.

        The default writes them one by one; the file log writes them with one ``writev``
        and, with ``fsync="always"``, syncs once for all of them (a group commit): every
        record is on disk when this returns, as with :meth:`write`.
        """
        return [self.write_parts(parts, time_ms) for parts in records]

    def location(self, handle: WALRecordHandle) -> tuple[str, int] | None:
        """The file holding the record at ``handle`` and the offset of its first byte
        there, when the record is stored as it was written in a plain file; else ``None``
        (the default). The streaming engine then lets workers read a logged block from the
        log instead of writing it a second time to spill it.
        """
        return None

    @abstractmethod
    def read(self, handle: WALRecordHandle) -> bytes:
        """The record at ``handle``.

        :raises WALError: when the record is gone (its segment was cleaned).
        :raises WALCorruptionError: when it is damaged.
        """

    @abstractmethod
    def readAll(self) -> Iterator[WALRecord]:
        """Every record in the log with its handle, oldest first.

        :raises WALCorruptionError: at the first damaged record.
        """

    @abstractmethod
    def clean(self, threshold_ms: int) -> None:
        """Delete the segments whose records are all older than ``threshold_ms``."""

    @abstractmethod
    def close(self) -> None:
        """Make everything written durable and release the log (idempotent)."""

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_enabled(conf: Conf) -> bool:
    """Whether ``ember.streaming.receiver.writeAheadLog.enable`` is on in ``conf``."""
    return bool(conf.getBoolean(ENABLE_KEY, False))


def create_write_ahead_log(directory: str, conf: Conf) -> WriteAheadLog:
    """Open the configured write-ahead log implementation in ``directory``.

    :raises WALError: when ``ember.streaming.receiver.writeAheadLog.class`` does not name
        an importable subclass of :class:`WriteAheadLog`.
    """
    name = (conf.get(CLASS_KEY, "") or "").strip()
    if not name:
        return FileWriteAheadLog.from_conf(directory, conf)
    module, sep, attr = name.partition(":")
    if not sep:
        module, _, attr = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise WALError(
            f"{CLASS_KEY} = {name!r} cannot be loaded ({type(exc).__name__}: {exc}); give "
            f"an importable 'module:Class', a subclass of ember.wal.WriteAheadLog"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, WriteAheadLog)):
        raise WALError(f"{CLASS_KEY} = {name!r} is not a subclass of ember.wal.WriteAheadLog")
    return cls.from_conf(directory, conf)


# --------------------------------------------------------------------------- file log
@attrs.define
class _Segment:
    seq: int
    start_ms: int
    end_ms: int
    path: str


def _segment_name(seq: int, start_ms: int, end_ms: int) -> str:
    return f"log-{seq:010d}-{start_ms}-{end_ms}"


def _stamp() -> bytes:
    from ember import __version__

    stamp = {"format": FORMAT_VERSION, "ember": __version__,
             "python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    return SEGMENT_MAGIC + json.dumps(stamp, sort_keys=True).encode() + b"\n"


_datasync = getattr(os, "fdatasync", os.fsync)


class FileWriteAheadLog(WriteAheadLog):
    """The default write-ahead log: segment files in one local directory.

    :param directory: where the segments are (created if missing).
    :param rolling_interval_s: seconds of record time per segment; a record whose time is
        at or past its segment's end starts a new segment.
    :param fsync: ``"always"`` (each record, before ``write`` returns), ``"interval"`` or
        ``"never"`` — see the module documentation.
    :param fsync_interval_s: seconds between fsyncs with ``"interval"``.

    Opening the log repairs it: a torn record at the end of the newest segment (a crash in
    the middle of a write) is cut, with a warning naming it. New records always go to a
    new segment, never after records of an earlier run.

    >>> import tempfile
    >>> with FileWriteAheadLog(tempfile.mkdtemp()) as wal:
    ...     handle = wal.write(b"block 1", time_ms=1_000)
    ...     wal.read(handle)
    b'block 1'
    """

    def __init__(self, directory: str, *, rolling_interval_s: float = 60.0,
                 fsync: str = "always", fsync_interval_s: float = 1.0) -> None:
        if fsync not in FSYNC_POLICIES:
            raise WALError(f"{FSYNC_KEY} must be one of {', '.join(FSYNC_POLICIES)}; got {fsync!r}")
        if not rolling_interval_s > 0:
            raise WALError(f"{ROLLING_INTERVAL_KEY} must be positive, got {rolling_interval_s!r}")
        self.directory = os.path.abspath(directory)
        self.rolling_ms = max(1, round(rolling_interval_s * 1000))
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self._lock = threading.RLock()
        self._closed = False
        self._fd: int | None = None
        self._current: _Segment | None = None
        self._size = 0
        self._last_sync = time.monotonic()
        self._dirty = False
        os.makedirs(self.directory, exist_ok=True)
        self._segments: dict[int, _Segment] = {s.seq: s for s in self._list()}
        self._next_seq = max(self._segments, default=-1) + 1
        self._repair()

    @classmethod
    def from_conf(cls, directory: str, conf: Conf) -> FileWriteAheadLog:
        """Open the log in ``directory`` with the ``ember.streaming.receiver.writeAheadLog.*``
        settings of ``conf``."""
        return cls(
            directory,
            rolling_interval_s=conf.getDuration(ROLLING_INTERVAL_KEY, 60.0) or 60.0,
            fsync=(conf.get(FSYNC_KEY, "always") or "always").strip().lower(),
            fsync_interval_s=conf.getDuration(FSYNC_INTERVAL_KEY, 1.0) or 1.0,
        )

    def __repr__(self) -> str:
        return f"FileWriteAheadLog({self.directory!r}, fsync={self.fsync!r})"

    # ------------------------------------------------------------------ segments
    def _list(self) -> list[_Segment]:
        out = []
        for path in glob.glob(os.path.join(self.directory, "log-*")):
            m = _SEGMENT_NAME.match(os.path.basename(path))
            if m:
                out.append(_Segment(int(m.group(1)), int(m.group(2)), int(m.group(3)), path))
        return sorted(out, key=lambda s: s.seq)

    def segments(self) -> list[str]:
        """The paths of the segment files, oldest first."""
        with self._lock:
            return [s.path for s in sorted(self._segments.values(), key=lambda s: s.seq)]

    def _segment(self, seq: int) -> _Segment:
        seg = self._segments.get(seq)
        if seg is None or not os.path.exists(seg.path):
            raise WALError(
                f"write-ahead log segment {seq} is not in {self.directory} (it was cleaned "
                f"or deleted): its records are lost"
            )
        return seg

    def _repair(self) -> None:
        """Cut a torn tail off the newest segment (a crash in the middle of a write)."""
        if not self._segments:
            return
        seg = self._segments[max(self._segments)]
        size = os.path.getsize(seg.path)
        with open(seg.path, "rb") as f:
            start = self._check_stamp(seg, f, newest=True)
            if start is None:  # the segment's own header was torn: it holds no record
                log.warning("write-ahead log: removing %s, torn before its first record",
                            seg.path)
                os.unlink(seg.path)
                del self._segments[seg.seq]
                return
            end = start
            try:
                for _handle, _payload, record_end in self._records(seg, f, start, size,
                                                                   newest=True):
                    end = record_end
            except WALCorruptionError as exc:  # not a tail: reading the record reports it
                log.warning("write-ahead log: %s", exc)
                return
        if end < size:
            log.warning(
                "write-ahead log: cutting a torn record off the end of %s (offset %d, %d "
                "bytes): a crash interrupted its write; the records before it are kept",
                seg.path, end, size - end,
            )
            with open(seg.path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())

    def _check_stamp(self, seg: _Segment, f: Any, newest: bool) -> int | None:
        """Check the segment header; the offset of the first record, or ``None`` when the
        header of the newest segment was torn (the crash came right after it was created)."""
        f.seek(0)
        magic = f.read(len(SEGMENT_MAGIC))
        line = f.readline(4096) if magic == SEGMENT_MAGIC else b""
        if magic != SEGMENT_MAGIC or not line.endswith(b"\n"):
            if newest and SEGMENT_MAGIC.startswith(magic) and not line.endswith(b"\n"):
                return None
            raise WALCorruptionError(seg.path, 0, "not an ember write-ahead log segment header")
        try:
            stamp = json.loads(line)
        except ValueError as exc:
            raise WALCorruptionError(seg.path, 0, f"unreadable segment header ({exc})") from exc
        if stamp.get("format") != FORMAT_VERSION:
            raise WALError(
                f"write-ahead log segment {seg.path} has format {stamp.get('format')!r} "
                f"(written by ember {stamp.get('ember')}); this ember reads format "
                f"{FORMAT_VERSION}. Process it with the ember that wrote it, or delete it"
            )
        return len(magic) + len(line)

    def _records(self, seg: _Segment, f: Any, start: int, size: int,
                 newest: bool) -> Iterator[tuple[WALRecordHandle, bytes, int]]:
        """``(handle, payload, end offset)`` of each complete record of ``f`` between
        ``start`` and ``size``, read one record at a time.

        Stops quietly at a torn tail when ``newest``: a record cut short by the end of the
        file, a zero-filled tail, or a last record whose payload checksum fails (a crash of
        the machine can leave a page partly written). Raises :class:`WALCorruptionError`
        anywhere else.
        """
        f.seek(start)
        off = start
        while off < size:
            if size - off < FRAME_SIZE:
                if newest:
                    return
                raise WALCorruptionError(seg.path, off, "the segment ends inside a record header")
            frame = f.read(FRAME_SIZE)
            magic, length, time_ms, crc = _HEAD.unpack_from(frame)
            (hcrc,) = _HCRC.unpack_from(frame, _HEAD.size)
            if magic != RECORD_MAGIC or zlib.crc32(frame[:_HEAD.size]) != hcrc:
                if newest and _zeros(f, off, size):
                    return  # zero-filled tail: pages a machine crash left unwritten
                raise WALCorruptionError(seg.path, off, "bad record header (checksum mismatch)")
            end = off + FRAME_SIZE + length
            if end > size:
                if newest:
                    return
                raise WALCorruptionError(seg.path, off, "the segment ends inside a record")
            payload = f.read(length)
            if len(payload) != length:
                raise WALCorruptionError(seg.path, off, "the segment ends inside a record")
            if zlib.crc32(payload) != crc:
                if newest and end == size:
                    return
                raise WALCorruptionError(seg.path, off, "record checksum mismatch")
            yield WALRecordHandle(seg.seq, off, FRAME_SIZE + length, time_ms), payload, end
            off = end

    # ------------------------------------------------------------------ writing
    def _roll(self, time_ms: int) -> None:
        self._close_current()
        seg = _Segment(self._next_seq, time_ms, time_ms + self.rolling_ms, "")
        seg.path = os.path.join(self.directory, _segment_name(seg.seq, seg.start_ms, seg.end_ms))
        self._next_seq += 1
        fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            stamp = _stamp()
            _write_all(fd, [stamp])
            if self.fsync != "never":
                os.fsync(fd)
                fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._current, self._size = fd, seg, len(stamp)
        self._segments[seg.seq] = seg

    def _close_current(self) -> None:
        fd, self._fd, self._current = self._fd, None, None
        if fd is not None:
            try:
                if self.fsync != "never" and self._dirty:
                    _datasync(fd)
            finally:
                self._dirty = False
                os.close(fd)

    def write(self, record: bytes, time_ms: int) -> WALRecordHandle:
        """Append ``record`` (see :meth:`WriteAheadLog.write`); with ``fsync="always"`` it is
        on disk when this returns."""
        return self.write_parts((record,), time_ms)

    def write_parts(self, parts: Sequence[bytes], time_ms: int) -> WALRecordHandle:
        """Append one record made of ``parts``, written with one ``writev`` (no join)."""
        return self.write_many([parts], time_ms)[0]

    def write_many(self, records: Sequence[Sequence[bytes]],
                   time_ms: int) -> list[WALRecordHandle]:
        """Append ``records`` with one ``writev`` and at most one sync (a group commit)."""
        time_ms = int(time_ms)
        frames = []
        for parts in records:
            length = sum(len(p) for p in parts)
            if length > MAX_RECORD:
                raise WALError(f"a write-ahead log record holds at most {MAX_RECORD} bytes, "
                               f"got {length}")
            crc = 0
            for part in parts:
                crc = zlib.crc32(part, crc)
            head = _HEAD.pack(RECORD_MAGIC, length, time_ms, crc)
            frames.append((head + _HCRC.pack(zlib.crc32(head)), length))
        with self._lock:
            if self._closed:
                raise WALError(f"the write-ahead log in {self.directory} is closed")
            if self._current is None or time_ms >= self._current.end_ms:
                self._roll(time_ms)
            assert self._fd is not None and self._current is not None
            offset = self._size
            handles = []
            buffers: list[bytes] = []
            pos = offset
            for (frame, length), parts in zip(frames, records, strict=True):
                handles.append(WALRecordHandle(self._current.seq, pos, len(frame) + length,
                                               time_ms))
                buffers.append(frame)
                buffers.extend(parts)
                pos += len(frame) + length
            try:
                _write_all(self._fd, buffers)
            except BaseException:
                self._undo(offset)
                raise
            self._size = pos
            self._dirty = True
            if self.fsync == "always" or (
                    self.fsync == "interval"
                    and time.monotonic() - self._last_sync >= self.fsync_interval_s):
                _datasync(self._fd)
                self._dirty = False
                self._last_sync = time.monotonic()
            return handles

    def _undo(self, offset: int) -> None:
        """After a failed write: cut what part of it reached the file, or stop using it."""
        try:
            assert self._fd is not None
            os.ftruncate(self._fd, offset)
            os.lseek(self._fd, offset, os.SEEK_SET)
        except OSError:
            log.error("write-ahead log: could not cut a failed write off %s; the next record "
                      "starts a new segment", self._current.path if self._current else "?")
            self._close_current()

    # ------------------------------------------------------------------ reading
    def location(self, handle: WALRecordHandle) -> tuple[str, int] | None:
        """The segment file of ``handle`` and the offset of its record's payload there."""
        with self._lock:
            seg = self._segments.get(handle.segment)
        if seg is None:
            return None
        return seg.path, handle.offset + FRAME_SIZE

    def read(self, handle: WALRecordHandle) -> bytes:
        """The record at ``handle`` (see :meth:`WriteAheadLog.read`)."""
        with self._lock:
            seg = self._segment(handle.segment)
        with open(seg.path, "rb") as f:
            end = handle.offset + handle.length
            for found, payload, _end in self._records(seg, f, handle.offset, end, newest=False):
                if found == handle:
                    return payload
                break
        raise WALCorruptionError(seg.path, handle.offset,
                                 f"the record there is not the one logged ({handle})")

    def readAll(self) -> Iterator[WALRecord]:
        """Every record, oldest first (see :meth:`WriteAheadLog.readAll`)."""
        with self._lock:
            segs = sorted(self._segments.values(), key=lambda s: s.seq)
            sizes = {self._current.seq: self._size} if self._current is not None else {}
        for seg in segs:
            newest = seg is segs[-1]
            try:
                f = open(seg.path, "rb")
            except FileNotFoundError:  # cleaned meanwhile
                continue
            with f:
                size = sizes.get(seg.seq, os.fstat(f.fileno()).st_size)
                start = self._check_stamp(seg, f, newest=newest)
                if start is None:
                    continue
                for handle, payload, _end in self._records(seg, f, start, size, newest):
                    yield WALRecord(handle, payload)

    # ------------------------------------------------------------------ cleaning, closing
    def clean(self, threshold_ms: int) -> None:
        """Delete every segment, except the one being written, whose end time is at or
        before ``threshold_ms`` (all its records are older)."""
        with self._lock:
            current = self._current.seq if self._current is not None else None
            old = [s for s in self._segments.values()
                   if s.end_ms <= threshold_ms and s.seq != current]
            for seg in old:
                try:
                    os.unlink(seg.path)
                except FileNotFoundError:
                    pass
                del self._segments[seg.seq]
        if old:
            log.debug("write-ahead log %s: cleaned %d segment(s) older than %d ms",
                      self.directory, len(old), threshold_ms)

    def close(self) -> None:
        """fsync (unless ``fsync="never"``) and close the segment being written."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_current()


def _zeros(f: Any, off: int, size: int) -> bool:
    """Whether every byte of ``f`` from ``off`` to ``size`` is zero."""
    f.seek(off)
    left = size - off
    while left > 0:
        chunk = f.read(min(left, 1 << 20))
        if not chunk or chunk.count(0) != len(chunk):
            return False
        left -= len(chunk)
    return True


#: The most buffers one ``writev`` takes (Linux's IOV_MAX).
_IOV_MAX = 1024


def _write_all(fd: int, buffers: list[bytes]) -> None:
    """Write every byte of ``buffers`` to ``fd`` (one system call when it can)."""
    views = [memoryview(b) for b in buffers if len(b)]
    while views:
        n = os.writev(fd, views[:_IOV_MAX])
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]
