"""The ``file`` source for ember: ``textFileStream``, ``binaryRecordsStream``, ``fileStream``.

Each batch takes the files that arrived in a directory since the previous batch — created,
moved or renamed in, whatever their modification time — and reads them in the workers: the
lines of text files, or fixed-length byte records. Nested directories are not watched. A file
must arrive complete: write it elsewhere (on the same filesystem) and rename it in. How new
files are found, with a bounded memory, is described in :mod:`ember_file._tracker`.

It is a pull source: no receiver runs and no worker slot is taken; the driver lists the
directory at each batch time and the batch's RDD reads the new files.
"""

from __future__ import annotations

import collections
import logging
import os
import stat
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from ember.errors import EmberError
from ember.sources import Delivery, PullSource

from ember_file._tracker import DirectoryTracker, FilterError, Listing, Seen, default_filter

if TYPE_CHECKING:
    from ember.rdd import RDD
    from ember.streaming.context import StreamingContext

__all__ = ["FileProblem", "FileSource", "FileStreamError", "default_filter"]

log = logging.getLogger("ember_file")

#: The ``onError`` policies given by name.
ON_ERROR_POLICIES = ("fail", "skip-and-report")
#: The format tag of :meth:`FileSource.snapshot`'s data.
SNAPSHOT_FORMAT = "ember-file/1"
#: How many reported problems :attr:`FileSource.problems` keeps.
MAX_PROBLEMS = 1000
# On Windows ``st_ctime`` is the creation time, which a rename keeps: no arrival window.
_DEFAULT_REMEMBER = None if os.name == "nt" else 60.0


@attrs.frozen
class FileProblem:
    """A file of the directory that a batch could not read.

    :param path: the file's path.
    :param reason: what is wrong, e.g. ``"vanished before it could be read: ..."``.
    :param batch_time_ms: the batch that met it.
    """

    path: str
    reason: str
    batch_time_ms: int

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class FileStreamError(EmberError):
    """A file stream's batch failed: a file could not be read, or the directory not listed.

    :param message: the full explanation.
    :param problems: the files at fault (empty when the directory itself failed).
    """

    def __init__(self, message: str, problems: list[FileProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


def _directory(value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise TypeError(
            f"a file stream needs a directory path such as 'in/events', got {value!r:.80}"
        )
    return os.path.abspath(os.path.expanduser(value))


def _check_record_length(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < 1
    ):
        raise ValueError(f"recordLength must be an integer >= 1 (bytes), got {value!r}")


def _check_on_error(_inst: Any, _attr: Any, value: Any) -> None:
    if value not in ON_ERROR_POLICIES and not callable(value):
        raise ValueError(
            f"onError must be 'fail', 'skip-and-report' or a function of a FileProblem, "
            f"got {value!r}"
        )


def _check_remember(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0
    ):
        raise ValueError(f"remember must be a number of seconds >= 0 or None, got {value!r}")


def _runtime(source: FileSource) -> _Runtime:
    remember = None if source.remember is None else round(source.remember * 1e9)
    accept = source.filter if source.filter is not None else default_filter
    return _Runtime(DirectoryTracker(source.directory, accept, remember))


@attrs.frozen(eq=False)
class FileSource(PullSource):
    """The files that arrive in ``directory``, a batch at a time: text lines or byte records.

    Used by ``ssc.textFileStream(directory)``, ``ssc.binaryRecordsStream(directory,
    recordLength)`` and ``ssc.fileStream(directory, filter, newFilesOnly)``; the other
    options through ``ssc.stream("file", directory=..., onError=..., remember=...)``.

    Each batch takes every file that arrived (was created, moved or renamed in) since the
    previous batch, each file exactly once, even one renamed in with an old modification
    time. Files must arrive complete and not change afterwards: write a file elsewhere on the
    same filesystem, then rename it into the directory. A file that changes after it was
    taken (rewritten, replaced by a rename) is taken again as a new file, and logged.

    Delivery: **at least once**. Within a running context every file goes to exactly one
    batch. With checkpoint recovery (:meth:`snapshot`/:meth:`restore`) a batch that did not
    complete is re-run with the same files, so its records may reach the outputs twice
    (exactly once into an idempotent-per-batch-time sink). Without a checkpoint a restarted
    stream starts afresh: with ``newFilesOnly`` it skips files that arrived while it was
    down; without, it reads the whole directory again.

    :param directory: the directory to watch (``~`` expanded, made absolute when the source
        is built). Its subdirectories are ignored. It may not exist yet when the stream
        starts; each batch fails with a clear error until it does.
    :param recordLength: ``None`` for text (each batch's records are the lines of its files,
        decoded as UTF-8); else every record is ``bytes`` of this length, and a file whose
        size is not a multiple of it is reported (see ``onError``), never truncated.
    :param filter: ``filter(path) -> bool`` chooses the files (``path`` is the full path);
        default :func:`default_filter`, which skips names starting with ``.`` or ``_``. A
        filter given replaces the default one (as in Spark).
    :param newFilesOnly: ``True``: files already in the directory when the stream starts are
        skipped; ``False``: the first batch takes them.
    :param onError: what a batch does with a new file it cannot read (vanished before it was
        read, not a regular file, a broken link, cannot be opened, a size that is not a
        multiple of ``recordLength``): ``"fail"`` (default) fails the batch with a
        :class:`FileStreamError` naming the files; the batch takes none of its files, so the
        next batch tries them again. ``"skip-and-report"`` logs a warning, records a
        :class:`FileProblem` in :attr:`problems` and skips the file for good; a function
        ``onError(problem)`` is called instead of the warning (if it raises, the batch fails
        as with ``"fail"``). A file that fails later, while the workers read it, always
        fails the batch (the task error names it).
    :param remember: seconds of arrival time over which the memory of seen files is kept
        (default 60, as Spark's ``minRememberDuration``; ``None``: keep every file still in the
        directory). It must exceed the filesystem's timestamp granularity, the clock skew
        between the file server and the driver, and the time one listing takes.
    :raises TypeError: ``directory`` is not a path.
    :raises ValueError: an option is out of range.

    Records per batch, as reported to listeners: the number of records for byte records
    (known from the file sizes); ``0`` for text (counting lines would mean reading every file
    on the driver).

    >>> FileSource("/data/in", recordLength=16).describe()
    'file stream of /data/in (records of 16 bytes)'
    """

    name: ClassVar[str] = "file"
    api_version: ClassVar[str] = "1.0"
    delivery: ClassVar[Delivery] = Delivery.AT_LEAST_ONCE

    directory: str = attrs.field(converter=_directory)
    recordLength: int | None = attrs.field(
        default=None, kw_only=True, validator=_check_record_length
    )
    filter: Callable[[str], bool] | None = attrs.field(
        default=None, kw_only=True,
        validator=attrs.validators.optional(attrs.validators.is_callable()),
    )
    newFilesOnly: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    onError: str | Callable[[FileProblem], Any] = attrs.field(
        default="fail", kw_only=True, validator=_check_on_error
    )
    remember: float | None = attrs.field(
        default=_DEFAULT_REMEMBER, kw_only=True, validator=_check_remember
    )
    _rt: _Runtime = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_rt", _runtime(self))  # after the validators ran

    # ------------------------------------------------------------------ information
    def describe(self) -> str:
        """A one-line description: the directory and the record kind."""
        kind = "text lines" if self.recordLength is None else (
            f"records of {self.recordLength} bytes"
        )
        return f"file stream of {self.directory} ({kind})"

    @property
    def problems(self) -> list[FileProblem]:
        """The files skipped under ``onError="skip-and-report"`` (or a function), oldest first;
        the last :data:`MAX_PROBLEMS` are kept."""
        with self._rt.lock:
            return list(self._rt.problems)

    @property
    def remembered_files(self) -> int:
        """How many files the source remembers as seen now (bounded; see the module doc)."""
        with self._rt.lock:
            return len(self._rt.tracker.seen)

    # ------------------------------------------------------------------ lifecycle
    def start(self, ssc: StreamingContext) -> None:
        """Note the files already present (skipped with ``newFilesOnly``)."""
        with self._rt.lock:
            self._begin()

    def stop(self) -> None:
        """Nothing to release: the state (and :meth:`snapshot`) is kept."""

    def forget(self, before_ms: int) -> None:
        """Drop the file lists of batches before ``before_ms``: they will never be re-run.

        The streaming scheduler calls this with the stream's remember window, which spans
        twice the checkpoint interval of any stateful stream downstream, so recovery can
        recompute every batch since the last saved state with exactly its files.
        """
        rt = self._rt
        with rt.lock:
            for t in [t for t in rt.batches if t < before_ms]:
                del rt.batches[t]

    def _begin(self) -> None:
        rt = self._rt
        if rt.started:
            return
        rt.started = True
        if rt.restored or not self.newFilesOnly:
            return
        try:
            listing = rt.tracker.scan()
        except OSError as exc:
            log.warning("file stream of %s: cannot list the directory at start (%s); every "
                        "file in it once it can be listed will be read", self.directory, exc)
            return
        except FilterError as exc:
            raise FileStreamError(f"file stream of {self.directory}: {exc}") from exc.error
        present = list(listing.new) + [(p, s) for p, _, s in listing.problems if s is not None]
        rt.tracker.commit(listing, present)
        log.info("file stream of %s: %d file(s) present at start are skipped (newFilesOnly)",
                 self.directory, len(present))

    # ------------------------------------------------------------------ batches
    def compute(self, ssc: StreamingContext, batch_time_ms: int) -> tuple[RDD, int | None]:
        """The RDD of the files new at ``batch_time_ms`` and, for byte records, their count.

        A batch time already computed (a batch re-run after checkpoint recovery) gets the
        same files again.

        :raises FileStreamError: the directory cannot be listed, or (``onError="fail"``) a
            new file cannot be read; the batch then takes no file.
        """
        rt = self._rt
        with rt.lock:
            if not rt.started:
                self.start(ssc)
            if batch_time_ms in rt.batches:
                return self._replay(ssc, batch_time_ms)
            if rt.last_time is not None and batch_time_ms <= rt.last_time:
                raise FileStreamError(
                    f"file stream of {self.directory}: batch {batch_time_ms} ms was computed "
                    f"before and its files are no longer remembered (the stream is at "
                    f"{rt.last_time} ms); a batch can be re-run only until it completes"
                )
            listing = self._scan()
            return self._take(ssc, batch_time_ms, listing)

    def _scan(self) -> Listing:
        try:
            return self._rt.tracker.scan()
        except FilterError as exc:
            raise FileStreamError(f"file stream of {self.directory}: {exc}") from exc.error
        except OSError as exc:
            raise FileStreamError(
                f"file stream of {self.directory}: cannot list the directory: {exc}; the "
                f"batch takes no file (the next batch lists it again)"
            ) from exc

    def _take(self, ssc: StreamingContext, t: int, listing: Listing) -> tuple[RDD, int | None]:
        rt = self._rt
        for path in listing.changed:
            log.warning("file stream of %s: %s changed after it was read; it is read again as "
                        "a new file (files must arrive complete and not change: write "
                        "elsewhere, then rename in)", self.directory, path)
        problems = [FileProblem(p, reason, t) for p, reason, _ in listing.problems]
        idents = {p: s for p, _, s in listing.problems}
        good: list[tuple[str, Seen]] = []
        for path, ident in listing.new:
            reason = self._unreadable(path, ident.size)
            if reason is None:
                good.append((path, ident))
            else:
                problems.append(FileProblem(path, reason, t))
                idents[path] = ident
        self._fail_on(problems, t)
        rdd, count = self._rdd(ssc, t, [(p, s.size) for p, s in good])
        self._report(problems)
        skipped = [(p.path, s) for p in problems if (s := idents.get(p.path)) is not None]
        rt.tracker.commit(listing, good + skipped)
        rt.batches[t] = [(p, s.size) for p, s in good]
        rt.last_time = t
        return rdd, count

    def _replay(self, ssc: StreamingContext, t: int) -> tuple[RDD, int | None]:
        rt = self._rt
        files, problems = [], []
        for path, size in rt.batches[t]:
            reason = self._unreadable(path, size)
            if reason is None:
                files.append((path, size))
            else:
                problems.append(FileProblem(path, reason, t))
        self._fail_on(problems, t)
        rdd, count = self._rdd(ssc, t, files)
        self._report(problems)
        log.info("file stream of %s: batch %d ms re-run with its %d file(s)",
                 self.directory, t, len(files))
        return rdd, count

    def _unreadable(self, path: str, size: int) -> str | None:
        """Why ``path`` cannot be read, or ``None``. Opens without blocking (a FIFO put in
        its place must not hang the driver) and reads nothing."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            return f"cannot be opened: {exc}"
        try:
            mode = os.fstat(fd).st_mode
        finally:
            os.close(fd)
        if not stat.S_ISREG(mode):
            return "not a regular file: file streams read regular files only"
        length = self.recordLength
        if length is not None and size % length:
            return (f"its size ({size} bytes) is not a multiple of recordLength ({length} "
                    f"bytes): its last {size % length} bytes would not form a record")
        return None

    def _fail_on(self, problems: list[FileProblem], t: int) -> None:
        if not problems or self.onError != "fail":
            return
        shown = "; ".join(map(str, problems[:10]))
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise FileStreamError(
            f"file stream of {self.directory}: batch {t} ms cannot read {len(problems)} "
            f"file(s): {shown}{more}. The batch fails and takes none of its files; the next "
            f"batch tries them again. Fix or remove the file(s), or build the stream with "
            f"onError='skip-and-report' to skip unreadable files",
            problems,
        )

    def _report(self, problems: list[FileProblem]) -> None:
        handler = self.onError
        for problem in problems:
            self._rt.problems.append(problem)
            if callable(handler):
                handler(problem)
            else:
                log.warning("file stream of %s: batch %d ms skips %s (onError=%r)",
                            self.directory, problem.batch_time_ms, problem, handler)

    def _rdd(self, ssc: StreamingContext, t: int,
             files: list[tuple[str, int]]) -> tuple[RDD, int | None]:
        sc = ssc.sparkContext
        if not files:
            return sc.emptyRDD(), 0
        paths = [p for p, _ in files]
        try:
            if self.recordLength is None:
                return sc.textFile(paths), None
            rdd = sc.binaryRecords(paths, self.recordLength)
        except (OSError, ValueError) as exc:
            raise FileStreamError(
                f"file stream of {self.directory}: batch {t} ms cannot read its files: {exc}"
            ) from exc
        return rdd, sum(size // self.recordLength for _, size in files)

    # ------------------------------------------------------------------ checkpoints
    def snapshot(self) -> dict[str, Any]:
        """The source's state, as JSON-friendly data, for a checkpoint.

        Off-by-one rule: the snapshot saved with batch ``t``'s metadata must be taken *after*
        ``compute(t)``, so it describes the state after batch ``t`` took its files. It holds
        the memory of seen files and, for every batch not yet known to have completed, the
        files that batch took, so that recovery re-running an incomplete batch (``t`` or
        earlier) finds that batch's files, and later batches take only files that arrived
        after it. A batch's files are kept until :meth:`forget` says no recovery can need
        them (the stream's remember window), and are in every snapshot until then.
        """
        rt = self._rt
        with rt.lock:
            return {
                "format": SNAPSHOT_FORMAT,
                "directory": self.directory,
                "last_time_ms": rt.last_time,
                "batches": [[t, [list(f) for f in files]] for t, files in
                            sorted(rt.batches.items())],
                **rt.tracker.to_state(),
            }

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`snapshot` data (recovery): call before the stream starts.

        :raises ValueError: the data is not a file-stream snapshot or is for another
            directory.
        """
        if not isinstance(state, dict) or state.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(
                f"not a file stream snapshot (expected format {SNAPSHOT_FORMAT!r}): "
                f"{state!r:.120}"
            )
        if state["directory"] != self.directory:
            raise ValueError(
                f"this snapshot is of the file stream of {state['directory']}, not of "
                f"{self.directory}"
            )
        rt = self._rt
        with rt.lock:
            rt.tracker.load_state(state)
            rt.batches = {int(t): [(p, int(n)) for p, n in files]
                          for t, files in state["batches"]}
            rt.last_time = state["last_time_ms"]
            rt.restored = True


class _Runtime:
    """The mutable state of one :class:`FileSource` (its configuration is frozen)."""

    def __init__(self, tracker: DirectoryTracker) -> None:
        self.lock = threading.RLock()
        self.tracker = tracker
        self.started = False
        self.restored = False
        self.batches: dict[int, list[tuple[str, int]]] = {}
        self.last_time: int | None = None
        self.problems: collections.deque[FileProblem] = collections.deque(maxlen=MAX_PROBLEMS)

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k != "lock"}
        state["problems"] = list(self.problems)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.problems = collections.deque(state["problems"], maxlen=MAX_PROBLEMS)
        self.lock = threading.RLock()
