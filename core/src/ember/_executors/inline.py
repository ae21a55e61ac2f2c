"""The ``inline`` executor: tasks run in the calling thread of the driver process."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ember.executors import Executor

__all__ = ["InlineExecutor"]


class InlineExecutor(Executor):
    """Runs every task immediately, in the caller's thread, without serializing anything.

    For debugging (breakpoints and prints work) and for fast deterministic tests. It has one
    slot; functions need not be picklable here, though they must be on ``local[N]``.
    """

    name = "inline"
    in_process = True

    @property
    def num_slots(self) -> int:
        return 1

    def submit(self, fn: Callable[..., Any], *args: Any, slot: int | None = None) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # the future carries it
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True) -> None:
        return None
