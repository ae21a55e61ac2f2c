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
import os
import pickle
import shutil
import struct
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

__all__ = [
    "DataSplit",
    "FileSplit",
    "commit_output",
    "list_input_files",
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


def list_input_files(path: str) -> list[str]:
    """The files a path names: a file, a directory's visible files, a glob, or a comma list.

    A file or directory whose name starts with ``_`` or ``.`` is hidden: skipped in a
    directory and among a glob's matches.
    """
    files: list[str] = []
    for part in str(path).split(","):
        part = os.path.expanduser(part.strip())
        if part.startswith("file://"):
            part = part[len("file://"):]
        if glob.has_magic(part):
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


def text_splits(path: str, min_partitions: int) -> list[FileSplit]:
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


@attrs.frozen
class BlockSplit:
    """A partition made of one received block (see ``ember.streaming._blocks``)."""

    index: int
    payload: bytes
    codec: str
    serializer: Any = None
    errors: str = "replace"


def decode_block(block: Any) -> Iterator[Any]:
    """The records of a received block: deserialized records, or decoded text lines."""
    if block.codec == "lines":
        data = block.payload
        if data.endswith(b"\n"):
            data = data[:-1]
        if not data and not block.payload:
            return iter(())
        return iter(data.decode("utf-8", getattr(block, "errors", "replace")).split("\n"))
    if block.serializer is None:
        return iter(pickle.loads(block.payload))
    return iter(block.serializer.loads_batch(block.payload))
