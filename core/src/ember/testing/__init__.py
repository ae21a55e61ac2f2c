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

__all__ = ["free_port", "leaked_resources", "pooled_worker_pids", "snapshot_resources"]

#: Threads owned by the pooled local workers, which live across contexts by design.
_POOL_THREAD_NAMES = ("ExecutorManagerThread", "QueueFeederThread")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pooled_worker_pids() -> set[int]:
    """The pids of ``local[N]`` worker processes pooled for reuse across contexts."""
    from ember._executors import local

    return {pid for slot in list(local._SLOTS) for pid in slot.pids()}


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
    stopping need a moment); pooled local workers and their loky threads are not leaks.
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
        procs = sorted(children - children_before - pooled)
        if not threads and not procs or time.monotonic() >= deadline:
            return threads, procs
        time.sleep(0.05)
