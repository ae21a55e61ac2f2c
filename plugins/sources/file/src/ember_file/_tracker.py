"""New-file detection for the file source: which files of a directory are new since last time.

Design
------
A batch takes every file that *arrived* in the directory (created, moved or renamed in)
since the previous batch. A file renamed in keeps its old modification time, so the
modification time cannot say whether a file is new; two facts are used instead:

- **Memory.** Each file seen is remembered by path with its identity: inode, size and
  modification time (:class:`Seen`). A listed file is new when its path is not remembered,
  or is remembered with another identity (a file replaced by a rename, or rewritten: read
  again, and logged, as a new file).
- **Arrival time.** A file's status-change time (``st_ctime`` on POSIX) is set by the
  kernel when the file is created, renamed or moved in, so it is its arrival time (for a
  symbolic link, the later of the link's and the target's). Unlike the modification time,
  no program can set it to the past.

Memory stays bounded because a file is forgotten when

1. it is no longer in the directory (processed files moved away cost nothing), or
2. it arrived more than ``remember`` before the *high-water mark*: the newest arrival time
   seen, capped by the wall clock at the listing's start.

A forgotten file still in the directory is never taken again: a listed file that is not
remembered and arrived before ``high-water mark - remember`` is old (it was present at an
earlier listing). A file that arrives after a listing gets an arrival time of at least that
listing's start (less the timestamp granularity), hence at least the high-water mark used
at the next listing: it is new. This holds as long as ``remember`` exceeds the filesystem's
timestamp granularity, the clock skew between the machine that writes a file's timestamps
and the driver, and the duration of one listing; the default, 60 s, is Spark's
``minRememberDuration``. ``remember=None`` disables rule 2 (memory then grows with the
directory, as with a filesystem whose rename does not update ``st_ctime``, e.g. Windows,
where it is the default).

Memory therefore holds the files that are both in the directory and arrived in the last
``remember`` seconds: about (arrival rate x ``remember``), whatever the stream's age.

Caveats, by design (at least once, never silently lost): a forgotten file whose status
changes later (rewritten, ``touch``, ``chmod``) gets a new arrival time and is read again;
if the clock steps back by more than ``remember``, files arrived before the step may be read
again.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["DirectoryTracker", "FilterError", "Listing", "Seen", "default_filter"]

log = logging.getLogger("ember_file")


def default_filter(path: str) -> bool:
    """Spark's default file filter: skip names starting with ``.`` or ``_``.

    Such names are hidden or temporary files (``.part`` files being copied, ``_SUCCESS``
    markers, ``_temporary`` directories).

    >>> default_filter("/data/in/events-1.txt"), default_filter("/data/in/.events-1.txt.tmp")
    (True, False)
    """
    return not os.path.basename(path).startswith((".", "_"))


@attrs.frozen
class Seen:
    """The identity of a file as seen in one listing, and its arrival time.

    :param ino: the inode number (a file replaced by a rename has a new one).
    :param size: the size in bytes.
    :param mtime_ns: the modification time, in ns.
    :param ctime_ns: the arrival (status-change) time, in ns.
    """

    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    def same_file(self, other: Seen) -> bool:
        """Whether ``other`` is this file unchanged (arrival time aside: ``chmod`` moves it)."""
        return (self.ino, self.size, self.mtime_ns) == (other.ino, other.size, other.mtime_ns)

    def to_list(self) -> list[int]:
        """A JSON-friendly form, for snapshots."""
        return [self.ino, self.size, self.mtime_ns, self.ctime_ns]


@attrs.frozen
class Listing:
    """The result of one scan of the directory, not yet committed to the tracker's memory.

    :param new: the new files, ``(path, Seen)``, sorted by path.
    :param changed: the paths among ``new`` that were remembered with another identity.
    :param problems: listed files that cannot be read: ``(path, reason, Seen or None)``.
    :param keep: the remembered files still present and unchanged.
    :param hwm_ns: the high-water mark after this listing.
    """

    new: list[tuple[str, Seen]]
    changed: list[str]
    problems: list[tuple[str, str, Seen | None]]
    keep: dict[str, Seen]
    hwm_ns: int | None


def _seen(st: os.stat_result, arrival_ns: int) -> Seen:
    return Seen(st.st_ino, st.st_size, st.st_mtime_ns, arrival_ns)


_KIND = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


@attrs.define(eq=False)
class DirectoryTracker:
    """Finds the files new in ``directory`` since the last committed listing.

    :param directory: the absolute path of the directory watched (not its subdirectories).
    :param accept: ``accept(path) -> bool`` chooses the files considered (the user's filter).
    :param remember_ns: the arrival-time window (see the module doc); ``None``: no window.
    """

    directory: str
    accept: Callable[[str], bool]
    remember_ns: int | None
    seen: dict[str, Seen] = attrs.field(factory=dict)
    hwm_ns: int | None = None

    def scan(self) -> Listing:
        """List the directory and sort its files into new, kept and problems.

        :raises OSError: the directory cannot be listed.
        :raises FilterError: the filter raised for some path.
        """
        start_ns = time.time_ns()
        horizon = (
            None if self.hwm_ns is None or self.remember_ns is None
            else self.hwm_ns - self.remember_ns
        )
        with os.scandir(self.directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        new: list[tuple[str, Seen]] = []
        changed: list[str] = []
        problems: list[tuple[str, str, Seen | None]] = []
        keep: dict[str, Seen] = {}
        newest: int | None = None
        for entry in entries:
            path = entry.path
            try:
                accepted = self.accept(path)
            except Exception as exc:
                raise FilterError(path, exc) from exc
            if not accepted:
                continue
            try:
                if entry.is_dir():
                    continue  # nested directories are not watched
                st = entry.stat()
                arrival = st.st_ctime_ns
                if entry.is_symlink():
                    arrival = max(arrival, entry.stat(follow_symlinks=False).st_ctime_ns)
            except OSError as exc:
                ident = _lstat_seen(path)
                known = self.seen.get(path)
                if ident is None:
                    if known is None:  # a remembered file that vanished is simply forgotten
                        problems.append((path, f"vanished before it could be read: {exc}", None))
                elif known is not None and known.same_file(ident):
                    keep[path] = known  # a problem already reported
                elif known is not None or horizon is None or ident.ctime_ns >= horizon:
                    what = "a broken symbolic link" if _is_link(path) else "cannot be examined"
                    problems.append((path, f"{what}: {exc}", ident))
                continue
            ident = _seen(st, arrival)
            newest = arrival if newest is None else max(newest, arrival)
            known = self.seen.get(path)
            if known is not None and known.same_file(ident):
                keep[path] = known
                continue
            if known is None and horizon is not None and arrival < horizon:
                continue  # arrived before the memory window: present at an earlier listing
            if not stat.S_ISREG(st.st_mode):
                kind = _KIND.get(stat.S_IFMT(st.st_mode), "not a regular file")
                problems.append((path, f"{kind}: file streams read regular files only", ident))
                continue
            if known is not None:
                changed.append(path)
            new.append((path, ident))
        top = max((v for v in (self.hwm_ns, newest) if v is not None), default=None)
        hwm = None if top is None else min(top, start_ns)
        return Listing(new, changed, problems, keep, hwm)

    def commit(self, listing: Listing, taken: list[tuple[str, Seen]]) -> None:
        """Make ``listing`` the memory: its kept files plus ``taken`` (read or skipped)."""
        seen = dict(listing.keep)
        seen.update(taken)
        self.hwm_ns = listing.hwm_ns
        if self.remember_ns is not None and self.hwm_ns is not None:
            horizon = self.hwm_ns - self.remember_ns
            seen = {p: s for p, s in seen.items() if s.ctime_ns >= horizon}
        self.seen = seen

    # ------------------------------------------------------------------ snapshots
    def to_state(self) -> dict[str, Any]:
        """The memory as JSON-friendly data."""
        return {
            "hwm_ns": self.hwm_ns,
            "seen": [[p, *s.to_list()] for p, s in sorted(self.seen.items())],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Replace the memory with data from :meth:`to_state`."""
        self.hwm_ns = state["hwm_ns"]
        self.seen = {p: Seen(ino, size, m, c) for p, ino, size, m, c in state["seen"]}


def _lstat_seen(path: str) -> Seen | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return _seen(st, st.st_ctime_ns)


def _is_link(path: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


class FilterError(Exception):
    """The user's filter raised for a path."""

    def __init__(self, path: str, error: BaseException) -> None:
        super().__init__(f"the file stream's filter raised for {path!r}: "
                         f"{type(error).__name__}: {error}")
        self.path = path
        self.error = error
