"""Broadcast variables: a read-only value sent to each worker once, not with every task."""

from __future__ import annotations

import os
import pickle
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import cloudpickle

__all__ = ["Broadcast"]

T = TypeVar("T")
#: Values loaded in this (worker) process, by broadcast file path: the path holds the
#: context's own directory, so broadcasts of different contexts never collide.
_worker_values: dict[str, Any] = {}
_worker_lock = threading.Lock()


def _rebuild(bid: int, path: str | None, value: Any, ref: Any = None) -> Broadcast[Any]:
    b: Broadcast[Any] = Broadcast.__new__(Broadcast)
    b.bid, b._path, b._value, b._destroyed, b._on_driver = bid, path, value, False, False
    b._ref = ref
    return b


class Broadcast(Generic[T]):
    """A read-only value shared with tasks: ``sc.broadcast(v).value``.

    With a process-pool executor the value is pickled once, to a file in the context's local
    directory; each worker loads it on first use and keeps it for later tasks. Pickling a
    ``Broadcast`` (as part of a task's function) carries only its id and that path. An executor
    whose workers cannot read that directory keeps the pickled value itself
    (``Executor.put_broadcast``), and the task carries the executor's reference instead.
    """

    def __init__(self, bid: int, value: T, local_dir: str | None,
                 put: Callable[[int, bytes], Any] | None = None) -> None:
        self.bid = bid
        self._value = value
        self._destroyed = False
        self._on_driver = True
        self._path: str | None = None
        self._ref: Any = None
        if local_dir is not None:
            # The path also names the value in the workers' caches when an executor keeps it.
            self._path = os.path.join(local_dir, f"broadcast-{bid}")
            data = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            self._ref = put(bid, data) if put is not None else None
            if self._ref is None:
                tmp = self._path + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, self._path)
            elif hasattr(self._ref, "release"):
                weakref.finalize(self, self._ref.release)

    def __reduce__(self):
        if self._destroyed:
            raise RuntimeError(f"broadcast {self.bid} was destroyed and cannot be used in tasks")
        if self._path is None:  # in-process executor: the value itself
            return (_rebuild, (self.bid, None, self._value))
        if self._ref is not None:
            return (_rebuild, (self.bid, self._path, None, self._ref))
        return (_rebuild, (self.bid, self._path, None))

    @property
    def value(self) -> T:
        """The broadcast value."""
        if self._destroyed:
            raise RuntimeError(f"broadcast {self.bid} was destroyed; its value is gone")
        if self._on_driver or self._path is None:
            return self._value
        with _worker_lock:
            if self._path not in _worker_values:
                if self._ref is not None:
                    _worker_values[self._path] = pickle.loads(self._ref.load())
                else:
                    with open(self._path, "rb") as f:
                        _worker_values[self._path] = pickle.load(f)
            return _worker_values[self._path]

    def unpersist(self, blocking: bool = False) -> None:
        """Let workers drop their copy; the value is sent again if used later."""
        if self._path is not None:
            with _worker_lock:
                _worker_values.pop(self._path, None)

    def destroy(self, blocking: bool = False) -> None:
        """Release the value everywhere; the broadcast cannot be used afterwards."""
        self.unpersist()
        self._destroyed = True
        self._value = None  # type: ignore[assignment]
        if self._ref is not None:
            release = getattr(self._ref, "release", None)
            if release is not None:
                release()
        elif self._path is not None:
            try:
                os.unlink(self._path)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"Broadcast<id={self.bid}>"


def forget_broadcasts(directory: str) -> None:
    """Drop the values this process loaded from broadcast files under ``directory``."""
    prefix = os.path.join(directory, "")
    with _worker_lock:
        for path in [p for p in _worker_values if p.startswith(prefix)]:
            del _worker_values[path]
