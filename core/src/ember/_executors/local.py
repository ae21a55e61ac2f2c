"""The ``local`` executor: ``local[N]`` runs tasks on N loky worker processes.

Each slot is a one-process loky executor, so the scheduler can send a task to the worker that
holds the partition it needs in memory, and the death of one worker (even by SIGKILL) loses
only that worker's tasks: loky reports it, the slot gets a fresh process on its next task.

Worker processes are pooled per driver process and reused by the next context (as loky's
reusable executor is), so a test suite or a notebook does not pay process start-up each time;
idle workers exit after ``ember.executor.idleTimeout`` seconds (default 300) and at exit.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any

import loky
from loky.process_executor import BrokenProcessPool, ShutdownExecutorError

from ember.errors import WorkerLostError
from ember.executors import Executor

__all__ = ["LocalExecutor", "shutdown_workers"]


class _Slot:
    """One worker process behind a one-process loky executor, replaced when it breaks."""

    def __init__(self, env: dict[str, str], idle_timeout: float) -> None:
        self.env = env
        self.idle_timeout = idle_timeout
        self.generation = 0
        self._lock = threading.Lock()
        self._pool: loky.ProcessPoolExecutor | None = None

    def _get_pool(self) -> loky.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = loky.ProcessPoolExecutor(
                    max_workers=1, timeout=self.idle_timeout, env=self.env
                )
            return self._pool

    def _replace(self, broken: loky.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
                self.generation += 1
        try:
            broken.shutdown(wait=False, kill_workers=True)
        except Exception:  # it is broken already
            pass

    def submit(self, fn: Callable[..., Any], args: tuple) -> Future:
        outer: Future = Future()
        for _ in range(2):
            pool = self._get_pool()
            try:
                inner = pool.submit(fn, *args)
                break
            except (BrokenProcessPool, ShutdownExecutorError, RuntimeError):
                self._replace(pool)
        else:  # pragma: no cover - two fresh pools in a row refused work
            outer.set_exception(WorkerLostError("could not start a worker process"))
            return outer

        def _done(f: Future, pool: loky.ProcessPoolExecutor = pool) -> None:
            try:
                result: Any = f.result()
                error: BaseException | None = None
            except BrokenProcessPool as exc:
                self._replace(pool)
                error = WorkerLostError(f"worker process died while running a task: {exc}")
            except BaseException as exc:  # transport errors go to the caller
                error = exc
            try:
                if error is None:
                    outer.set_result(result)
                else:
                    outer.set_exception(error)
            except InvalidStateError:  # the caller cancelled it (its job failed): drop it
                pass

        inner.add_done_callback(_done)
        return outer

    def pids(self) -> list[int]:
        pool = self._pool
        if pool is None:
            return []
        procs = getattr(pool, "_processes", None) or {}
        return [p.pid for p in list(procs.values()) if p.is_alive()]

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, kill_workers=True)


_POOL_LOCK = threading.Lock()
_SLOTS: list[_Slot] = []


def _slots(n: int, env: dict[str, str], idle_timeout: float) -> list[_Slot]:
    with _POOL_LOCK:
        for i, slot in enumerate(_SLOTS):
            if slot.env != env or slot.idle_timeout != idle_timeout:
                slot.shutdown()
                _SLOTS[i] = _Slot(env, idle_timeout)
        while len(_SLOTS) < n:
            _SLOTS.append(_Slot(env, idle_timeout))
        return _SLOTS[:n]


def shutdown_workers() -> None:
    """Stop every pooled worker process of this driver process (called at exit)."""
    with _POOL_LOCK:
        slots = list(_SLOTS)
        _SLOTS.clear()
    for slot in slots:
        slot.shutdown()


atexit.register(shutdown_workers)


def _warm_up() -> int:
    import ember._engine.worker  # noqa: F401 - import the task runner ahead of the first task

    return os.getpid()


class LocalExecutor(Executor):
    """``local[N]``: N worker processes on this machine (``local[*]``: one per CPU).

    Workers are pooled and reused by later contexts of the same driver process; they exit
    after ``ember.executor.idleTimeout`` idle seconds, at interpreter exit, or on
    :func:`shutdown_workers`. Every worker has ``PYTHONHASHSEED=0`` so that anything hashed
    is hashed alike in every worker.
    """

    name = "local"

    def __init__(self, master: str, conf: Any, local_dir: str) -> None:
        super().__init__(master, conf, local_dir)
        inner = master[master.index("[") + 1 : -1] if "[" in master else "1"
        n = (os.cpu_count() or 1) if inner == "*" else int(inner)
        env = {"PYTHONHASHSEED": "0"}
        for key, value in conf.getAll():
            if key.startswith("ember.executorEnv."):
                env[key[len("ember.executorEnv."):]] = value
        timeout = conf.getFloat("ember.executor.idleTimeout")
        self._slots = _slots(n, env, 300.0 if timeout is None else timeout)
        for slot in self._slots:
            slot.submit(_warm_up, ())

    @property
    def num_slots(self) -> int:
        return len(self._slots)

    def submit(self, fn: Callable[..., Any], *args: Any, slot: int | None = None) -> Future:
        return self._slots[slot or 0].submit(fn, args)

    def generation(self, slot: int) -> int:
        return self._slots[slot].generation

    def worker_pids(self) -> list[int]:
        return [pid for s in self._slots for pid in s.pids()]

    def shutdown(self, wait: bool = True) -> None:
        """Release this context's use of the pool; the worker processes stay for reuse."""
        return None
