"""An in-memory, receiver-based source for tests: :class:`TestingSource` (bytewax-style).

A :class:`TestingSource` is a :class:`~ember.receivers.ReceiverSource` whose receiver reads
from memory: first the ``items`` it was built with, then whatever the test pushes into its
:class:`TestingFeed` while the stream runs. Besides records, the items may hold markers:

- :data:`TestingSource.FAIL`: the receiver calls ``restart(...)`` with a
  :class:`TestingSourceError`, as a receiver that lost its connection would. It reads on
  after the marker once restarted; nothing before or after the marker is lost.
- :data:`TestingSource.PAUSE`: the receiver reads nothing more until
  :meth:`TestingFeed.resume` is called (for ever without a feed), but stays started.
- :data:`TestingSource.EOF`: the receiver calls ``stop(...)``: it stops for good, while the
  rest of the stream goes on with empty batches.

::

    feed = TestingFeed()
    stream = TestingSource(["a", "b", TestingSource.FAIL, "c"], feed=feed).createStream(ssc)
    ...
    feed.send(["d", "e"])          # later records, while the stream runs
    feed.wait_delivered(5)         # the receiver stored all five

Records go in with ``store`` (one by one), ``storeMany`` (up to ``batch_size`` at a time,
removed from the feed only once stored: a *reliable* receiver) or ``storeBytes`` (records
must then be ``str`` without line breaks; they come back as the same strings).

The source is configuration only: building it starts nothing, and it pickles (a feed
pickles by name and is found again in the same process).
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any, ClassVar

from ember.receivers import Receiver, ReceiverSource
from ember.sources import Delivery

__all__ = ["TestingFeed", "TestingReceiver", "TestingSource", "TestingSourceError"]

#: How the receiver stores records: ``Receiver.store``, ``storeMany`` or ``storeBytes``.
STORE_METHODS = ("store", "storeMany", "storeBytes")


class _Marker:
    """A control item of a :class:`TestingSource` (not a record)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"TestingSource.{self._name}"

    def __reduce__(self) -> str:
        return self._name  # pickles as the module-level constant of the same name


#: Stop the receiver for good (``Receiver.stop``).
EOF = _Marker("EOF")
#: Make the receiver fail and be restarted (``Receiver.restart``).
FAIL = _Marker("FAIL")
#: Read nothing more until :meth:`TestingFeed.resume`.
PAUSE = _Marker("PAUSE")


class TestingSourceError(Exception):
    """The error a :class:`TestingSource` receiver restarts with at a ``FAIL`` marker."""

    __test__ = False


_FEEDS: weakref.WeakValueDictionary[str, TestingFeed] = weakref.WeakValueDictionary()
_FEED_IDS = itertools.count()


def _feed_named(name: str) -> TestingFeed:
    feed = _FEEDS.get(name)
    if feed is None:
        raise LookupError(
            f"TestingFeed {name!r} no longer exists in this process: a TestingSource can only "
            f"be unpickled where its feed lives"
        )
    return feed


class TestingFeed:
    """Records and markers waiting to be read by a :class:`TestingSource` receiver.

    Thread-safe: the test pushes from its thread, the receiver takes from its own. One feed
    feeds one receiver at a time. It pickles by name (within one process).

    :param name: a name to find it by (unique; generated when ``None``).
    """

    __test__ = False

    def __init__(self, name: str | None = None) -> None:
        self.name = name if name is not None else f"feed-{next(_FEED_IDS)}"
        if self.name in _FEEDS:
            raise ValueError(f"a TestingFeed named {self.name!r} already exists")
        _FEEDS[self.name] = self
        self._cond = threading.Condition()
        self._items: collections.deque[Any] = collections.deque()
        self._paused = False
        self._delivered = 0

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _feed_named, (self.name,)

    def __repr__(self) -> str:
        return f"TestingFeed({self.name!r}, waiting={len(self)}, delivered={self.delivered})"

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    # ------------------------------------------------------------------ the test's side
    def push(self, *items: Any) -> None:
        """Append records and markers, in order."""
        self.extend(items)

    def extend(self, items: Iterable[Any]) -> None:
        """Append records and markers from an iterable, in order."""
        with self._cond:
            self._items.extend(items)
            self._cond.notify_all()

    def send(self, records: Iterable[Any]) -> None:
        """Append records (the ``feed`` protocol of :mod:`ember.testing.contracts.source`)."""
        self.extend(records)

    def fail(self) -> None:
        """Make the receiver fail once it reaches this point (appends :data:`FAIL`)."""
        self.push(FAIL)

    def close(self) -> None:
        """Make the receiver stop for good once it reaches this point (appends :data:`EOF`)."""
        self.push(EOF)

    def resume(self) -> None:
        """Let the receiver read on after a :data:`PAUSE` marker."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    @property
    def delivered(self) -> int:
        """How many records receivers have stored from this feed so far."""
        with self._cond:
            return self._delivered

    def wait_delivered(self, n: int, timeout: float = 30.0) -> bool:
        """Wait until receivers stored at least ``n`` records from this feed; ``False`` on
        timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._delivered >= n, timeout)

    # ------------------------------------------------------------------ the receiver's side
    def _take(self, limit: int, halt: threading.Event, wait: float) -> list[Any] | None:
        """Up to ``limit`` leading records, or ``[marker]``; ``None`` when there is nothing
        after ``wait`` seconds, while paused, or once ``halt`` is set."""
        deadline = time.monotonic() + wait
        with self._cond:
            while not halt.is_set():
                if self._items and not self._paused:
                    head = self._items[0]
                    if isinstance(head, _Marker):
                        self._items.popleft()
                        if head is PAUSE:
                            self._paused = True
                            continue
                        return [head]
                    taken = []
                    while self._items and len(taken) < limit \
                            and not isinstance(self._items[0], _Marker):
                        taken.append(self._items.popleft())
                    return taken
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return None

    def _give_back(self, records: list[Any]) -> None:
        """Put records taken but not stored back at the front, in order."""
        with self._cond:
            self._items.extendleft(reversed(records))
            self._cond.notify_all()

    def _acknowledge(self, n: int) -> None:
        with self._cond:
            self._delivered += n
            self._cond.notify_all()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class TestingReceiver(Receiver):
    """The receiver of a :class:`TestingSource`: one thread reading its items, then its feed (see there).

    Usable directly with ``ssc.receiverStream(TestingReceiver(...))``; the parameters are
    those of :class:`TestingSource`.
    """

    __test__ = False

    def __init__(self, items: Iterable[Any] = (), *, feed: TestingFeed | None = None,
                 method: str = "store", batch_size: int = 100,
                 restart_delay: float | None = None) -> None:
        super().__init__()
        if method not in STORE_METHODS:
            raise ValueError(f"method must be one of {STORE_METHODS}, got {method!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        self.items = tuple(items)
        self.feed = feed
        self.method = method
        self.batch_size = batch_size
        self.restart_delay = restart_delay
        self._reading: TestingFeed | None = None  # what the thread reads, set at the first start
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_reading=None, _thread=None, _halt=None, _supervisor=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._halt = threading.Event()

    def onStart(self) -> None:
        """Start the reading thread (returns at once)."""
        if self._reading is None:  # the first start: ``items`` go in front of the feed
            self._reading = self.feed if self.feed is not None else TestingFeed()
            with self._reading._cond:
                self._reading._items.extendleft(reversed(self.items))
        self._halt = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._halt,), daemon=True,
            name=f"ember-testing-receiver-{self.streamId}",
        )
        self._thread.start()

    def onStop(self) -> None:
        """Stop the reading thread and wait for it."""
        self._halt.set()
        if self._reading is not None:
            self._reading._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # ------------------------------------------------------------------ the thread
    def _run(self, halt: threading.Event) -> None:
        feed = self._reading
        assert feed is not None
        limit = 1 if self.method == "store" else self.batch_size
        while not halt.is_set() and not self.isStopped():
            taken = feed._take(limit, halt, 0.5)
            if not taken:
                continue
            head = taken[0]
            if head is FAIL:
                self.restart("TestingSource: FAIL marker",
                             TestingSourceError("TestingSource: FAIL marker"),
                             self.restart_delay)
                return
            if head is EOF:
                self.stop("TestingSource: EOF marker")
                return
            if not self._store(feed, taken):
                return

    def _store(self, feed: TestingFeed, records: list[Any]) -> bool:
        try:
            if self.method == "store":
                for record in records:
                    self.store(record)
            elif self.method == "storeMany":
                self.storeMany(records)
            else:
                self.storeBytes("".join(f"{r}\n" for r in records).encode("utf-8"))
        except RuntimeError:
            if not self.isStopped():
                raise
            feed._give_back(records)  # stopped for good meanwhile: keep them for the next one
            return False
        feed._acknowledge(len(records))
        return True


class TestingSource(ReceiverSource):
    """An in-memory receiver-based source: ``items``, then what is pushed into ``feed``.

    :param items: records and markers (:data:`EOF`, :data:`FAIL`, :data:`PAUSE`) read first.
    :param feed: a :class:`TestingFeed` read after ``items``, for records pushed while the
        stream runs.
    :param method: ``"store"`` (default), ``"storeMany"`` or ``"storeBytes"``.
    :param batch_size: at most this many records per ``storeMany``/``storeBytes`` call.
    :param restart_delay: seconds before a restart at a ``FAIL`` marker (default
        ``ember.streaming.receiverRestartDelay``).

    Delivery: at most once, since its records live in memory only.
    """

    __test__ = False

    EOF: ClassVar[_Marker] = EOF
    FAIL: ClassVar[_Marker] = FAIL
    PAUSE: ClassVar[_Marker] = PAUSE

    name = "testing"
    delivery = Delivery.AT_MOST_ONCE

    def __init__(self, items: Iterable[Any] = (), *, feed: TestingFeed | None = None,
                 method: str = "store", batch_size: int = 100,
                 restart_delay: float | None = None) -> None:
        if method not in STORE_METHODS:
            raise ValueError(f"method must be one of {STORE_METHODS}, got {method!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        self.items = tuple(items)
        self.feed = feed
        self.method = method
        self.batch_size = batch_size
        self.restart_delay = restart_delay

    def __repr__(self) -> str:
        return (f"TestingSource({len(self.items)} items, feed={self.feed!r}, "
                f"method={self.method!r})")

    def createReceiver(self) -> TestingReceiver:
        """A new :class:`TestingReceiver` reading ``items`` and then ``feed``."""
        return TestingReceiver(self.items, feed=self.feed, method=self.method,
                               batch_size=self.batch_size, restart_delay=self.restart_delay)
