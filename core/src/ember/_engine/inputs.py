"""Reading and writing partitions: collections, text files, pickle files.

Text files are split by byte range (as Hadoop's line reader does): a split owns the lines
that *start* inside it, so every line is read exactly once however the ranges fall. Writes go
to a temporary directory beside the target that is renamed into place when every partition
is written, so no reader ever sees a half-written output directory.
"""

from __future__ import annotations

import glob
import gzip
import io
import itertools
import os
import pickle
import shutil
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import attrs

__all__ = [
    "DataSplit",
    "FileSplit",
    "binary_record_splits",
    "commit_output",
    "list_input_files",
    "read_binary_records",
    "read_frames",
    "read_text_split",
    "slice_collection",
    "text_splits",
    "write_frames",
]

_FRAME = struct.Struct("<Q")
_MIN_SPLIT = 1 << 20  # never split text files into pieces smaller than 1 MiB


@attrs.frozen
class DataSplit:
    """A partition whose records travel with the task (``parallelize``)."""

    index: int
    payload: Any  # a list or range in-process; pickled bytes otherwise
    pickled: bool = False


def load_data_split(split: DataSplit) -> Iterator[Any]:
    """The records of a :class:`DataSplit`."""
    data = pickle.loads(split.payload) if split.pickled else split.payload
    return iter(data)


def slice_collection(data: Iterable[Any], num_slices: int) -> list[Sequence[Any]]:
    """Cut ``data`` into ``num_slices`` contiguous slices as PySpark's ``parallelize`` does.

    >>> slice_collection(range(1, 5), 2)
    [range(1, 3), range(3, 5)]
    """
    if isinstance(data, range):
        seq: Sequence[Any] = data
    elif isinstance(data, (list, tuple)):
        seq = data
    else:
        seq = list(data)
    n = len(seq)
    return [seq[(i * n) // num_slices : ((i + 1) * n) // num_slices] for i in range(num_slices)]


@attrs.frozen
class FileSplit:
    """Bytes ``start:end`` of one file; ``end`` is ``None`` for a whole (compressed) file."""

    index: int
    path: str
    start: int
    end: int | None


def list_input_files(path: str | Sequence[str]) -> list[str]:
    """The files a path names: a file, a directory's visible files, a glob, or a comma list.

    A file or directory whose name starts with ``_`` or ``.`` is hidden: skipped in a
    directory and among a glob's matches. A list (or tuple) of paths names each path
    exactly: no comma splitting, no glob matching, no ``~`` expansion, so any file name
    (``a,b.txt``, ``data[1].txt``, ``_part``) can be given.
    """
    if isinstance(path, (list, tuple)):
        parts = [os.fspath(p) for p in path]
        exact = True
    else:
        parts = [os.path.expanduser(p.strip()) for p in str(path).split(",")]
        exact = False
    files: list[str] = []
    for part in parts:
        if not exact and part.startswith("file://"):
            part = part[len("file://"):]
        if not exact and glob.has_magic(part):
            # Hidden names (``_SUCCESS``, ``.crc`` ...) are skipped as in a directory
            # listing, as Hadoop's input formats do; a name given in full is always read.
            matches = sorted(
                m for m in glob.glob(part) if not os.path.basename(m).startswith((".", "_"))
            )
        else:
            matches = [part]
        if not matches:
            raise FileNotFoundError(f"input path {part!r} matches no files")
        for m in matches:
            if os.path.isdir(m):
                files.extend(
                    os.path.join(m, name)
                    for name in sorted(os.listdir(m))
                    if not name.startswith((".", "_"))
                    and os.path.isfile(os.path.join(m, name))
                )
            elif os.path.exists(m):
                files.append(m)
            else:
                raise FileNotFoundError(f"input path {m!r} does not exist")
    return files


def text_splits(path: str | Sequence[str], min_partitions: int) -> list[FileSplit]:
    """Byte-range splits of the files of ``path``, at least ``min_partitions`` when possible."""
    files = list_input_files(path)
    sizes = [os.path.getsize(f) for f in files]
    goal = max(sum(sizes) // max(min_partitions, 1), 1)
    size = max(goal, _MIN_SPLIT) if sum(sizes) > _MIN_SPLIT * min_partitions else goal
    splits: list[FileSplit] = []
    for f, n in zip(files, sizes, strict=True):
        if f.endswith(".gz"):
            splits.append(FileSplit(len(splits), f, 0, None))
            continue
        start = 0
        while start < n:
            end = n if n - start < size * 1.1 else start + size
            splits.append(FileSplit(len(splits), f, start, end))
            start = end
        if n == 0:
            splits.append(FileSplit(len(splits), f, 0, 0))
    return splits


def _record_length(record_length: Any) -> int:
    if isinstance(record_length, bool) or not isinstance(record_length, int) or record_length < 1:
        raise ValueError(f"recordLength must be an integer >= 1, got {record_length!r}")
    return record_length


def binary_record_splits(path: str | Sequence[str], record_length: int,
                         min_partitions: int) -> list[FileSplit]:
    """Splits of the fixed-length records of the files of ``path``, cut at record boundaries.

    Each split covers whole records of one file; empty files give no split.

    :raises ValueError: a file's size is not a multiple of ``record_length`` (its last bytes
        would not form a record), naming the file.
    """
    record_length = _record_length(record_length)
    files = list_input_files(path)
    sizes = [os.path.getsize(f) for f in files]
    for f, n in zip(files, sizes, strict=True):
        if n % record_length:
            raise ValueError(
                f"{f}: its size ({n} bytes) is not a multiple of the record length "
                f"({record_length} bytes): its last {n % record_length} bytes would not form "
                f"a record; fix or remove the file"
            )
    total = sum(sizes)
    goal = max(total // max(min_partitions, 1), 1)
    size = max(goal, _MIN_SPLIT) if total > _MIN_SPLIT * min_partitions else goal
    size = max(record_length, size - size % record_length)
    splits: list[FileSplit] = []
    for f, n in zip(files, sizes, strict=True):
        start = 0
        while start < n:
            end = n if n - start < size * 1.1 else start + size
            splits.append(FileSplit(len(splits), f, start, end))
            start = end
    return splits


def read_binary_records(split: FileSplit, record_length: int) -> Iterator[bytes]:
    """The ``record_length``-byte records in bytes ``split.start:split.end`` of its file.

    :raises OSError: the file is shorter than when it was split (changed after listing).
    """
    assert split.end is not None
    chunk = max(1, (4 << 20) // record_length) * record_length  # about 4 MiB at a time
    with open(split.path, "rb") as f:
        f.seek(split.start)
        pos = split.start
        while pos < split.end:
            want = min(chunk, split.end - pos)
            data = f.read(want)
            if len(data) < want:
                raise OSError(
                    f"{split.path} is shorter than when it was listed: expected bytes "
                    f"{pos}-{pos + want}, got {len(data)}; files must not change once they "
                    f"are given to ember"
                )
            for i in range(0, want, record_length):
                yield data[i : i + record_length]
            pos += want


def _decode_lines(data: bytes, use_unicode: bool) -> list[Any]:
    if not data:
        return []
    if data.endswith(b"\n"):
        data = data[:-1]
    if use_unicode:
        text = data.decode("utf-8")
        lines: list[Any] = text.split("\n")
        if "\r" in text:
            lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
        return lines
    lines = data.split(b"\n")
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]


def read_text_split(split: FileSplit, use_unicode: bool = True) -> Iterator[Any]:
    """The lines that start inside ``split``, without their line endings."""
    if split.end is None:
        with gzip.open(split.path, "rb") as f:
            return iter(_decode_lines(f.read(), use_unicode))
    if split.end <= split.start:
        return iter(())
    with open(split.path, "rb") as f:
        start = split.start
        if start > 0:
            f.seek(start - 1)
            skipped = f.readline()  # the rest of the line that started before this split
            start = start - 1 + len(skipped)
        if start >= split.end:
            return iter(())
        f.seek(start)
        data = f.read(split.end - start)
        if not data.endswith(b"\n"):
            data += f.readline()  # finish the last line that starts inside the split
    return iter(_decode_lines(data, use_unicode))


def write_frames(path: str, chunks: Iterable[bytes]) -> None:
    """Write length-prefixed frames to ``path`` (via a temporary name, fsynced, renamed)."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "wb") as f:
        for chunk in chunks:
            f.write(_FRAME.pack(len(chunk)))
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_frames(path: str) -> Iterator[bytes]:
    """The frames :func:`write_frames` wrote, refusing a truncated file."""
    with open(path, "rb") as f:
        data = f.read()
    view = memoryview(data)
    pos = 0
    while pos < len(data):
        if pos + _FRAME.size > len(data):
            raise ValueError(f"{path} is truncated at byte {pos}: it was not fully written")
        (n,) = _FRAME.unpack_from(view, pos)
        pos += _FRAME.size
        if pos + n > len(data):
            raise ValueError(f"{path} is truncated at byte {pos}: it was not fully written")
        yield bytes(view[pos : pos + n])
        pos += n


def batched(it: Iterator[Any], size: int) -> Iterator[list]:
    """Lists of up to ``size`` consecutive records."""
    batch: list = []
    append = batch.append
    for x in it:
        append(x)
        if len(batch) >= size:
            yield batch
            batch = []
            append = batch.append
    if batch:
        yield batch


def write_text_part(records: Iterator[Any], path: str, compress: bool) -> str:
    """Write one partition as lines to ``path``: ``str`` of each record in UTF-8, and
    ``bytes`` records as they are (as PySpark's ``saveAsTextFile`` does)."""
    opener = gzip.open if compress else open
    with opener(path, "wb") as raw:  # type: ignore[operator]
        out = io.BufferedWriter(raw, 1 << 20) if not compress else raw
        for batch in batched(records, 4096):
            if any(isinstance(x, (bytes, bytearray)) for x in batch):
                out.write(b"\n".join(map(_text_line, batch)) + b"\n")
            else:
                out.write(("\n".join(map(str, batch)) + "\n").encode("utf-8"))
        out.flush()
    return path


def _text_line(record: Any) -> bytes:
    if isinstance(record, (bytes, bytearray)):
        return bytes(record)
    return str(record).encode("utf-8")


def staging_dir(target: str) -> str:
    """A fresh temporary directory beside ``target`` for building it atomically."""
    target = os.path.abspath(target)
    parent = os.path.dirname(target) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(target)}.tmp-{uuid.uuid4().hex[:12]}")
    os.makedirs(tmp)
    return tmp


def commit_output(tmp: str, target: str, replace: bool = False) -> None:
    """Mark ``tmp`` complete (``_SUCCESS``) and rename it to ``target`` in one step.

    With ``replace``, an existing ``target`` is swapped out atomically and then removed.
    """
    with open(os.path.join(tmp, "_SUCCESS"), "wb"):
        pass
    if replace and os.path.exists(target):
        old = f"{tmp}.old"
        os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, target)


#: Text blocks are decoded and split this many bytes at a time (cut at line breaks), so a
#: task never holds a whole block's lines at once.
DECODE_SLICE_BYTES = 256 << 10


@attrs.frozen
class BlockSplit:
    """A partition made of one received block (see ``ember.streaming._blocks``).

    A block spilled to disk has an empty ``payload`` and its file's ``path``: a worker that
    sees the driver's files reads it there; with ``ship`` (workers elsewhere) the file is
    read on the driver when the split is pickled, and travels as the payload.
    """

    index: int
    payload: bytes
    codec: str
    serializer: Any = None
    errors: str = "replace"
    path: str | None = None
    ship: bool = False
    #: The payload's place in ``path``: from ``offset``, ``length`` bytes (-1: to the end).
    offset: int = 0
    length: int = -1

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if self.path is not None and self.ship:
            return (BlockSplit, (self.index,
                                 _read_spilled(self.path, self.offset, self.length),
                                 self.codec, self.serializer, self.errors))
        return (BlockSplit, (self.index, self.payload, self.codec, self.serializer,
                             self.errors, self.path, False, self.offset, self.length))


def _read_spilled(path: str, offset: int = 0, length: int = -1) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
    except FileNotFoundError:
        raise FileNotFoundError(_gone(path)) from None
    if length >= 0 and len(data) != length:
        raise OSError(f"received block file {path} holds {len(data)} of the {length} bytes "
                      f"expected at offset {offset}")
    return data


def _gone(path: str) -> str:
    return (f"received block file {path} is gone: its batch was forgotten (it is older "
            f"than the stream's remember duration) or the streaming context stopped")


def _memory_slices(data: bytes) -> Iterator[memoryview]:
    """``data`` in slices of about :data:`DECODE_SLICE_BYTES`, each ending after a line
    break (the last one may not)."""
    n = len(data)
    view = memoryview(data)
    start = 0
    while start < n:
        end = start + DECODE_SLICE_BYTES
        if end < n:
            nl = data.rfind(b"\n", start, end)
            if nl < 0:
                nl = data.find(b"\n", end)
            end = n if nl < 0 else nl + 1
        yield view[start:end]
        start = end


def _file_slices(path: str, offset: int = 0, length: int = -1) -> Iterator[bytes]:
    """The file's bytes (``length`` of them from ``offset``; -1: to the end) in slices of
    about :data:`DECODE_SLICE_BYTES`, each ending after a line break (the last one may
    not)."""
    try:
        f = open(path, "rb")  # closed by the with below, in the generator
    except FileNotFoundError:
        raise FileNotFoundError(_gone(path)) from None
    with f:
        f.seek(offset)
        left = length
        carry = b""
        while True:
            want = DECODE_SLICE_BYTES if left < 0 else min(DECODE_SLICE_BYTES, left)
            data = f.read(want) if want else b""
            if left >= 0:
                left -= len(data)
            if not data:
                if left > 0:
                    raise OSError(f"received block file {path} ends {left} bytes short of "
                                  f"its block")
                break
            if carry:
                data = carry + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            if cut == len(data):
                carry = b""
                yield data
            else:
                carry = data[cut:]
                yield data[:cut]
        if carry:
            yield carry


def _slice_lines(errors: str) -> Callable[[Any], list[str]]:
    def lines(chunk: Any) -> list[str]:
        text = str(chunk, "utf-8", errors)
        if "\r" in text:  # a CRLF line end is a line end (telnet, Windows peers)
            text = text.replace("\r\n", "\n")
        if text.endswith("\n"):
            text = text[:-1]
        return text.split("\n")
    return lines


def decode_block(block: Any) -> Iterator[Any]:
    """The records of a received block: deserialized records, or decoded text lines.

    Text is decoded a slice at a time (lazily, as the task consumes the lines); a spilled
    block is read from its file.
    """
    path = getattr(block, "path", None)
    offset = getattr(block, "offset", 0)
    length = getattr(block, "length", None)
    if length is None:  # a Block (on the driver): its payload's size in the file
        length = getattr(block, "spilled_bytes", 0) if path is not None else -1
    if block.codec == "lines":
        slices = (_file_slices(path, offset, length) if path is not None
                  else _memory_slices(block.payload))
        return itertools.chain.from_iterable(
            map(_slice_lines(getattr(block, "errors", "replace")), slices))
    payload = _read_spilled(path, offset, length) if path is not None else block.payload
    if block.serializer is None:
        return iter(pickle.loads(payload))
    return iter(block.serializer.loads_batch(payload))
