"""Metadata checkpoints: what a StreamingContext needs to restart after its driver died.

A checkpoint holds the configuration, the DStream graph (cloudpickle), the batches generated
but not completed, the last batch time, the input sources' positions, the data
checkpoints (saved state RDDs) the graph refers to and, with the write-ahead log on, which
logged blocks belong to which batch. One is written after each batch is
generated and after each batch completes, as ``checkpoint-<batch time>`` in the checkpoint
directory:

- atomically: a temporary file, fsync, rename, fsync of the directory;
- stamped: a JSON header line with the format version, the ember, Python and cloudpickle
  versions, a fingerprint of the application's code, and a BLAKE2 checksum of the payload;
- kept in several generations (``ember.streaming.checkpoint.generations``, default 5): a
  newest generation that is damaged (torn, bad checksum) is skipped with a warning and the
  one before it used; data checkpoints no retained generation refers to are deleted.

A checkpoint written by other application code or another ember/Python/cloudpickle version
is refused with a message naming the remedy — cloudpickle output is a transport, not an
archive, and Spark's guide says the same of checkpoints across upgrades.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import sys
import threading
import types
import uuid
from typing import Any

import attrs
import cloudpickle

from ember._durable import fsync_dir

__all__ = ["Checkpoint", "CheckpointError", "CheckpointWriter", "code_fingerprint",
           "dump_graph", "load_graph", "read_checkpoint"]

log = logging.getLogger("ember.streaming")

MAGIC = b"EMBER-STREAMING-CHECKPOINT\n"
FORMAT_VERSION = 1
PREFIX = "checkpoint-"


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be used; the message says what to do."""


def _versions() -> dict[str, str]:
    from ember import __version__

    return {
        "format": str(FORMAT_VERSION),
        "ember": __version__,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "cloudpickle": cloudpickle.__version__,
    }


def code_fingerprint(func: Any) -> str:
    """A digest of ``func``'s code and of the functions of its module it refers to.

    Changing the application (its setup function or what it calls in the same module)
    changes the fingerprint; re-running the same code does not. Functions it gets from an
    enclosing function (closures) count too; a ``functools.partial`` is fingerprinted by its
    function, a callable object by its class's code.
    """
    h = hashlib.blake2b(digest_size=12)
    seen: set[int] = set()

    def code(c: types.CodeType) -> None:
        h.update(c.co_code)
        h.update(repr(c.co_names).encode())
        for const in c.co_consts:
            if isinstance(const, types.CodeType):
                code(const)
            else:
                h.update(_stable_repr(const).encode())

    def visit(f: Any, depth: int) -> None:
        if depth > 20 or id(f) in seen:
            return
        seen.add(id(f))
        if isinstance(f, functools.partial):
            visit(f.func, depth + 1)
            return
        if isinstance(f, types.MethodType):
            f = f.__func__
        if not isinstance(f, types.FunctionType):
            if depth == 0 and callable(f):  # a callable object: the code of its class
                cls = type(f)
                h.update(cls.__qualname__.encode())
                for attr in sorted(vars(cls)):
                    visit(vars(cls)[attr], depth + 1)
            return
        h.update(f.__qualname__.encode())
        code(f.__code__)
        for cell in f.__closure__ or ():  # functions it got from an enclosing function
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if isinstance(value, (types.FunctionType, functools.partial)):
                visit(value, depth + 1)
        names = set()
        stack = [f.__code__]
        while stack:
            c = stack.pop()
            names.update(c.co_names)
            stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
        for name in sorted(names):
            g = f.__globals__.get(name)
            if isinstance(g, (types.FunctionType, type)) and \
                    getattr(g, "__module__", None) == f.__module__:
                if isinstance(g, type):
                    for attr in sorted(vars(g)):
                        visit(vars(g)[attr], depth + 1)
                else:
                    visit(g, depth + 1)

    visit(func, 0)
    return h.hexdigest()


def _stable_repr(const: Any) -> str:
    """``repr`` of a code constant, the same in every process: a frozenset (``x in {"a",
    "b"}`` compiles to one) is shown sorted, as its iteration order follows string hashing,
    which is randomized per process."""
    if isinstance(const, frozenset):
        return "frozenset({" + ", ".join(sorted(_stable_repr(c) for c in const)) + "})"
    if isinstance(const, tuple):
        return "(" + ", ".join(_stable_repr(c) for c in const) + ",)"
    return repr(const)


@attrs.frozen
class Checkpoint:
    """The content of one metadata checkpoint."""

    time_ms: int
    conf: list[tuple[str, str]]
    batch_ms: int
    zero_ms: int
    pending_ms: tuple[int, ...]
    last_completed_ms: int | None
    graph_blob: bytes
    source_states: dict[int, Any]
    data_dirs: tuple[str, ...]
    fingerprint: str | None
    #: Per logged receiver stream (write-ahead log on): its blocks by log handle, a
    #: :class:`~ember.streaming._blocks.ReceivedBlockState`.
    received_blocks: dict[int, Any] = attrs.field(factory=dict)


#: The persistent id of an RDD in a pickled graph: ``(RDD_REF, paths, partitioner)``.
RDD_REF = "ember.rdd"


def dump_graph(graph: Any) -> tuple[bytes, set[str]]:
    """cloudpickle a DStream graph for a checkpoint; returns the bytes and the data
    checkpoint directories of the RDDs it holds.

    An RDD held by the graph — an ``initialRDD`` of ``updateStateByKey``, a StateSpec's
    ``initialState``, a static RDD a ``transform`` function joins with — is saved to the
    checkpoint directory the first time (a job, once) and pickled as a reference to its
    files, which :func:`load_graph` reads back.
    """
    from ember.rdd import RDD

    dirs: set[str] = set()

    class GraphPickler(cloudpickle.CloudPickler):
        def persistent_id(self, obj: Any) -> Any:
            if not isinstance(obj, RDD):
                return None
            if obj._checkpoint_splits is None:
                obj.ctx._checkpoint_rdd(obj)
            paths = [split.path for split in obj._checkpoint_splits or ()]
            dirs.update(os.path.dirname(p) for p in paths[:1])
            return (RDD_REF, paths, obj.partitioner)

    buf = io.BytesIO()
    GraphPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(graph)
    return buf.getvalue(), dirs


def load_graph(blob: bytes, sc: Any) -> Any:
    """The graph :func:`dump_graph` pickled, its RDDs reading their saved files in ``sc``."""

    class GraphUnpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            if not (isinstance(pid, tuple) and len(pid) == 3 and pid[0] == RDD_REF):
                raise pickle.UnpicklingError(f"unknown reference in a checkpoint: {pid!r:.80}")
            return sc._checkpoint_file_rdd(pid[1], pid[2])

    return GraphUnpickler(io.BytesIO(blob)).load()


class CheckpointWriter:
    """Writes checkpoints into one directory and keeps the last few generations."""

    def __init__(self, directory: str, generations: int = 5) -> None:
        self.directory = directory
        self.generations = max(1, generations)
        self._lock = threading.Lock()

    def write(self, cp: Checkpoint) -> str:
        payload = pickle.dumps(cp, pickle.HIGHEST_PROTOCOL)
        header = dict(_versions())
        header.update(
            time_ms=cp.time_ms,
            fingerprint=cp.fingerprint,
            checksum=hashlib.blake2b(payload, digest_size=16).hexdigest(),
            length=len(payload),
            data_dirs=list(cp.data_dirs),
        )
        name = os.path.join(self.directory, f"{PREFIX}{cp.time_ms:020d}")
        tmp = os.path.join(self.directory, f".{PREFIX}{uuid.uuid4().hex}.tmp")
        with self._lock:
            try:
                with open(tmp, "wb") as f:
                    f.write(MAGIC)
                    f.write(json.dumps(header, sort_keys=True).encode() + b"\n")
                    f.write(payload)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, name)
            except BaseException:
                try:  # the previous generations are untouched; leave no temporary behind
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            fsync_dir(self.directory)
            self._rotate(cp.data_dirs)
        return name

    def _rotate(self, live_dirs: tuple[str, ...]) -> None:
        """Delete the generations beyond the newest ``self.generations`` and the data
        checkpoints only they refer to.

        ``live_dirs`` are the data checkpoints of the checkpoint just written: the graph
        still uses them even when that checkpoint's name sorts among the dropped ones (a
        batch that completes after later batches were generated writes an older name).
        """
        files = _checkpoint_files(self.directory)
        keep, drop = files[: self.generations], files[self.generations :]
        if not drop:
            return
        kept_dirs: set[str] = set(live_dirs)
        for path in keep:
            header = _read_header(path)
            if header is not None:
                kept_dirs.update(header.get("data_dirs", []))
        for path in drop:
            header = _read_header(path)
            try:
                os.unlink(path)
            except OSError:
                continue
            for d in (header or {}).get("data_dirs", []):
                if d not in kept_dirs:
                    shutil.rmtree(d, ignore_errors=True)
        for tmp in glob.glob(os.path.join(self.directory, f".{PREFIX}*.tmp")):
            try:  # a temporary file of a write that was interrupted by a crash
                if os.path.getmtime(tmp) < os.path.getmtime(keep[0]):
                    os.unlink(tmp)
            except OSError:
                pass


def _checkpoint_files(directory: str) -> list[str]:
    """The checkpoint files, newest first."""
    names = sorted(glob.glob(os.path.join(directory, f"{PREFIX}" + "[0-9]" * 20)), reverse=True)
    return names


def _read_header(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return None
            return json.loads(f.readline())
    except (OSError, ValueError):
        return None


def read_checkpoint(directory: str, fingerprint: str | None = None) -> Checkpoint | None:
    """The newest usable checkpoint in ``directory``, or ``None`` when there is none.

    :raises CheckpointError: when the checkpoint was written by other application code or
        another ember, Python or cloudpickle version, or when no generation is readable.
    """
    files = _checkpoint_files(directory)
    if not files:
        return None
    problems = []
    for path in files:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if not data.startswith(MAGIC):
            problems.append(f"{path}: not an ember checkpoint")
            log.warning("skipping damaged checkpoint %s: not an ember checkpoint", path)
            continue
        stream = io.BytesIO(data[len(MAGIC):])
        try:
            header = json.loads(stream.readline())
        except ValueError:
            problems.append(f"{path}: damaged header")
            log.warning("skipping damaged checkpoint %s: its header is unreadable", path)
            continue
        mine = _versions()
        theirs = {k: str(header.get(k)) for k in mine}
        if theirs != mine:
            raise CheckpointError(
                f"the checkpoint in {directory} was written by "
                + ", ".join(f"{k} {theirs[k]}" for k in mine)
                + "; this is " + ", ".join(f"{k} {mine[k]}" for k in mine)
                + ". It cannot be restored across versions: start with a new checkpoint "
                f"directory, or delete {directory}"
            )
        if fingerprint is not None and header.get("fingerprint") not in (None, fingerprint):
            raise CheckpointError(
                f"the checkpoint in {directory} was written by other application code "
                f"(code fingerprint {header.get('fingerprint')}, this program's is "
                f"{fingerprint}). A changed application cannot resume an old checkpoint: "
                f"use a new checkpoint directory, or delete {directory} to start over"
            )
        payload = stream.read()
        checksum = hashlib.blake2b(payload, digest_size=16).hexdigest()
        if len(payload) != header.get("length") or checksum != header.get("checksum"):
            problems.append(f"{path}: checksum mismatch")
            log.warning("skipping damaged checkpoint %s (torn or corrupted); trying the one "
                        "before it", path)
            continue
        try:
            cp = pickle.loads(payload)
        except Exception as exc:
            raise CheckpointError(
                f"the checkpoint {path} could not be loaded ({type(exc).__name__}: {exc}); "
                f"the application's code or its dependencies changed since it was written. "
                f"Use a new checkpoint directory, or delete {directory}"
            ) from exc
        return cp
    raise CheckpointError(
        f"no checkpoint in {directory} is readable ({'; '.join(problems)}); delete the "
        f"directory to start over"
    )
