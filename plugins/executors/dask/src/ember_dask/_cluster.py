"""A Dask cluster on this machine made of Dask's own commands, for development and tests.

:class:`LocalDaskCluster` starts ``dask scheduler`` and N ``dask worker`` processes on
127.0.0.1 (free ports, no dashboard, one thread per worker), exactly as they would be started
on a real cluster, only all here. Unlike ``distributed.LocalCluster`` it runs the scheduler
outside the driver process (the driver keeps its GIL to itself) and never re-imports the
driver's ``__main__`` in the workers, so a script needs no ``if __name__ == "__main__"`` guard.
Every process is tied to the driver: they end when it ends, even if it is killed.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["LocalDaskCluster", "shutdown_local_clusters"]

_PR_SET_PDEATHSIG = 1
#: The environment of every process of a local cluster: hashing alike in every process, and
#: no statistical profiler sampling the workers' threads every 10 ms (ember's tasks are pure
#: Python, and the sampler costs them the GIL).
_QUIET = {
    "PYTHONHASHSEED": "0",
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    # Dask's housekeeping, slowed from its defaults (20 ms, 500 ms, 100 ms): an idle local
    # cluster of two workers then takes ~1% of a core instead of ~10%.
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "2s",
    "DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL": "1s",
}


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when the driver process ends, however it ends."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


class LocalDaskCluster:
    """A Dask scheduler and ``n_workers`` Dask workers, each a process on 127.0.0.1.

    :param n_workers: how many ``dask worker`` processes to start (one thread each).
    :param nanny: start each worker under a Dask nanny, which restarts it if it dies (a
        process more per worker; without one, :meth:`replace_dead_workers` does that job).
    :param env: extra environment variables for every process.
    :param timeout: seconds to wait for the scheduler and the workers to come up.

    >>> cluster = LocalDaskCluster(2)            # doctest: +SKIP
    >>> cluster.address                          # doctest: +SKIP
    'tcp://127.0.0.1:40123'
    >>> cluster.close()                          # doctest: +SKIP
    """

    def __init__(self, n_workers: int, *, nanny: bool = False, env: dict[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        if n_workers < 1:
            raise ValueError(f"a local Dask cluster needs at least one worker, got {n_workers}")
        self.n_workers = n_workers
        self.nanny = nanny
        self._dir = tempfile.mkdtemp(prefix="ember-dask-")
        self._env = {**os.environ, **_QUIET, **(env or {})}
        self._lock = threading.Lock()
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.address = ""
        try:
            self._start(timeout)
        except BaseException:
            self.close()
            raise

    def _popen(self, args: list[str], log: str) -> subprocess.Popen:
        out = open(os.path.join(self._dir, log), "wb")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", *args], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=self._env, cwd=self._dir,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            out.close()

    def _start(self, timeout: float) -> None:
        scheduler_file = os.path.join(self._dir, "scheduler.json")
        self.scheduler = self._popen(
            ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", scheduler_file], "scheduler.log")
        deadline = time.monotonic() + timeout
        while not os.path.exists(scheduler_file):
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited with code {self.scheduler.returncode}:"
                                   f"\n{self.log('scheduler.log')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dask scheduler did not start within {timeout}s:\n"
                                   f"{self.log('scheduler.log')}")
            time.sleep(0.02)
        while True:  # the file may be seen before it is completely written
            try:
                with open(scheduler_file) as f:
                    self.address = json.load(f)["address"]
                break
            except (ValueError, KeyError):
                time.sleep(0.02)
        for i in range(self.n_workers):
            self.workers.append(self.start_worker(f"worker-{i}"))
        self.wait_for_workers(self.n_workers, max(1.0, deadline - time.monotonic()))

    def wait_for_workers(self, n: int, timeout: float = 60.0) -> None:
        """Wait until ``n`` workers are connected to the scheduler."""
        from distributed import Client

        with Client(self.address, timeout=timeout, set_as_default=False) as client:
            try:
                client.wait_for_workers(n, timeout=timeout)
            except TimeoutError as exc:
                logs = "\n".join(self.log(f"worker-{i}.log") for i in range(len(self.workers)))
                raise TimeoutError(f"{n} Dask workers did not connect within {timeout}s:\n"
                                   f"{logs}") from exc

    def start_worker(self, name: str) -> subprocess.Popen:
        """Start one more ``dask worker`` process connected to this cluster's scheduler."""
        return self._popen(
            ["distributed.cli.dask_worker", self.address, "--nthreads", "1", "--nworkers", "1",
             "--host", "127.0.0.1", "--no-dashboard", "--name", name, "--death-timeout", "30",
             "--local-directory", self._dir, "--nanny" if self.nanny else "--no-nanny"],
            f"{name}.log")

    def replace_dead_workers(self) -> int:
        """Start a new worker process for each one that has exited; returns how many."""
        replaced = 0
        with self._lock:
            for i, proc in enumerate(self.workers):
                if proc.poll() is not None and self.alive():
                    self.workers[i] = self.start_worker(f"worker-{i}")
                    replaced += 1
        return replaced

    def log(self, name: str) -> str:
        """The output of one of the processes (``scheduler.log``, ``worker-0.log``, ...)."""
        try:
            with open(os.path.join(self._dir, name), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        """Whether the scheduler process is still running."""
        return self.scheduler is not None and self.scheduler.poll() is None

    def close(self, timeout: float = 5.0) -> None:
        """Stop every process (workers first) and remove the cluster's directory."""
        procs = [*self.workers, *([self.scheduler] if self.scheduler else [])]
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> LocalDaskCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_POOL_LOCK = threading.Lock()
_POOL: dict[tuple[int, tuple[tuple[str, str], ...]], LocalDaskCluster] = {}


def pooled_cluster(n_workers: int, env: dict[str, str], timeout: float) -> LocalDaskCluster:
    """The local cluster of this driver process with ``n_workers`` workers and ``env``.

    Clusters are reused by later contexts (a test suite or a notebook does not pay the
    start-up each time) and stopped at exit; one whose scheduler died is replaced.
    """
    key = (n_workers, tuple(sorted(env.items())))
    with _POOL_LOCK:
        cluster = _POOL.get(key)
        if cluster is not None and not cluster.alive():
            cluster.close()
            cluster = None
        if cluster is None:
            cluster = _POOL[key] = LocalDaskCluster(n_workers, env=env, timeout=timeout)
        return cluster


def shutdown_local_clusters() -> None:
    """Stop every local Dask cluster this driver process started (called at exit)."""
    with _POOL_LOCK:
        clusters = list(_POOL.values())
        _POOL.clear()
    for cluster in clusters:
        cluster.close()


atexit.register(shutdown_local_clusters)
