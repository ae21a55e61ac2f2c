"""ember's test kit, for ember itself, its users and plugin authors.

Importing it needs only ember-core (no pytest). The pytest fixtures live in
:mod:`ember.testing.pytest_plugin`, registered automatically under the ``pytest11`` entry
point (disable with ``-p no:ember``); the contract test classes in
:mod:`ember.testing.contracts` need the ``ember-core[testing]`` extra.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ember._clock import ManualClock
from ember.testing.harness import ReceiverEvents, StreamHarness
from ember.testing.replayable import ReplayableReceiver, ReplayableServer
from ember.testing.sources import TestingFeed, TestingReceiver, TestingSource, TestingSourceError

__all__ = [
    "ManualClock",
    "ReceiverEvents",
    "ReplayableReceiver",
    "ReplayableServer",
    "StreamHarness",
    "TestingFeed",
    "TestingReceiver",
    "TestingSource",
    "TestingSourceError",
    "advance_batches",
    "assert_batches_equal",
    "free_port",
    "leaked_resources",
    "pooled_worker_pids",
    "run_batches",
    "snapshot_resources",
    "wait_until",
]

#: Threads owned by the pooled local workers, which live across contexts by design.
_POOL_THREAD_NAMES = ("ember-local-reader",)


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    """Poll ``predicate`` (state that other threads change: a receiver's progress, a file
    appearing) every 5 ms until it holds; fail after ``timeout`` seconds.

    :param what: what is awaited, for the error (``"every line in a block"``).
    :raises AssertionError: naming ``what`` and the timeout, when it never held.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.005)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pooled_worker_pids() -> set[int]:
    """The pids of ``local[N]`` worker processes pooled for reuse across contexts."""
    from ember._executors import local

    return {pid for slot in list(local._SLOTS) for pid in slot.pids()}


def _process_lifetime_helpers(pids: set[int]) -> set[int]:
    """Those of ``pids`` that live as long as this process by design: the resource trackers
    loky and multiprocessing start the first time a worker pool starts."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with ember-core[testing]
        return set()
    helpers = set()
    for pid in pids:
        try:
            if "resource_tracker" in " ".join(psutil.Process(pid).cmdline()):
                helpers.add(pid)
        except psutil.Error:
            pass
    return helpers


def snapshot_resources() -> tuple[set[int], set[int]]:
    """The ids of the live threads and the pids of the child processes, right now."""
    threads = {t.ident for t in threading.enumerate() if t.ident is not None}
    try:
        import psutil

        children = {p.pid for p in psutil.Process().children(recursive=True)}
    except ImportError:  # pragma: no cover - psutil comes with ember-core[testing]
        children = set()
    return threads, children


def leaked_resources(
    before: tuple[set[int], set[int]], timeout: float = 5.0
) -> tuple[list[threading.Thread], list[int]]:
    """Threads and child processes started since ``before`` that are still alive.

    Waits up to ``timeout`` seconds for them to finish (threads and processes that are
    stopping need a moment); pooled local workers and their loky threads, and the resource
    trackers loky and multiprocessing keep for the life of the process, are not leaks.
    """
    deadline = time.monotonic() + timeout
    while True:
        threads_before, children_before = before
        pooled = pooled_worker_pids()
        threads = [
            t for t in threading.enumerate()
            if t.ident not in threads_before and t.is_alive()
            and not (t.name in _POOL_THREAD_NAMES and pooled)
        ]
        _, children = snapshot_resources()
        new = children - children_before - pooled
        procs = sorted(new - _process_lifetime_helpers(new))
        if (not threads and not procs) or time.monotonic() >= deadline:
            return threads, procs
        time.sleep(0.05)


def advance_batches(ssc: Any, n: int = 1, timeout: float = 60.0) -> None:
    """Advance ``ssc``'s manual clock by ``n`` batch intervals, one at a time, and wait until
    each of those batches has completed. No sleeping: it waits on the scheduler.

    :raises TypeError: when the context does not run on a :class:`ManualClock`.
    :raises TimeoutError: when a batch does not complete within ``timeout`` seconds.
    """
    clock = ssc.clock
    if not isinstance(clock, ManualClock):
        raise TypeError(
            "advance_batches needs a StreamingContext on a ManualClock: build it with "
            "clock=ManualClock() or set ember.streaming.clock=manual"
        )
    interval = ssc._batch_ms
    for _ in range(n):
        target = (clock.now_ms() // interval + 1) * interval
        clock.set_time(target / 1000.0)
        ssc._await_batch(target, timeout)


def run_batches(
    build: Callable[[Any], Any],
    batches: Iterable[Iterable[Any]],
    *,
    interval: float = 1.0,
    master: str = "inline",
    num_batches: int | None = None,
    ordered: bool = True,
) -> list[list[Any]]:
    """Run a DStream pipeline over input batches and return each batch's output.

    ``build(stream)`` gets a queue stream of ``batches`` (each a list of records) and
    returns the DStream to collect. Time is driven by a :class:`ManualClock`, so the whole
    run takes as long as the computing does. A temporary checkpoint directory is set, so
    stateful operations work.

    >>> run_batches(lambda s: s.map(lambda x: x * 2), [[1, 2], [3]])
    [[2, 4], [6]]

    :param num_batches: how many batches to run (default: one per input batch).
    :param ordered: when false, each batch's output is sorted (for unordered results).
    """
    import tempfile

    from ember.context import Context
    from ember.streaming import StreamingContext

    inputs = [list(b) for b in batches]
    n = len(inputs) if num_batches is None else num_batches
    outputs: dict[int, list[Any]] = {}
    sc = Context(master, "run_batches")
    checkpoints = tempfile.TemporaryDirectory(prefix="ember-run-batches-")
    try:
        ssc = StreamingContext(sc, interval, clock=ManualClock())
        ssc.checkpoint(checkpoints.name)
        ssc._metadata_checkpoints = False  # a queue stream cannot be recovered anyway
        result = build(ssc.queueStream(inputs))
        result.foreachRDD(lambda t, rdd: outputs.__setitem__(round(t.timestamp() * 1000),
                                                               rdd.collect()))
        ssc.start()
        try:
            advance_batches(ssc, n)
            ssc._raise_error()
        finally:
            ssc.stop(stopSparkContext=False)
    finally:
        sc.stop()
        checkpoints.cleanup()
    out = [outputs[t] for t in sorted(outputs)]
    return out if ordered else [sorted(b, key=repr) for b in out]


def assert_batches_equal(actual: list[list[Any]], expected: list[list[Any]],
                         ordered: bool = True) -> None:
    """Assert two lists of batches are equal (each batch compared as a multiset if not ``ordered``)."""
    if len(actual) != len(expected):
        raise AssertionError(f"{len(actual)} batches, expected {len(expected)}: {actual!r}")
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        if ordered:
            ok = list(a) == list(e)
        else:
            ok = sorted(a, key=repr) == sorted(e, key=repr)
        if not ok:
            raise AssertionError(f"batch {i} differs: got {a!r}, expected {e!r}")
