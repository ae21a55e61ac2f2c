"""The ``dask`` executor: ember's tasks as Dask futures on a Dask distributed cluster.

Masters
-------
- ``dask://HOST:PORT`` connects to a running Dask scheduler (``dask scheduler`` and
  ``dask worker tcp://HOST:PORT`` started with Dask's own commands, on any machines).
- ``dask``, ``dask-local``, ``dask-local[N]`` (``dask[N]`` too) start a
  :class:`~ember_dask.LocalDaskCluster` of N worker processes (default: one per CPU), one
  thread each, on 127.0.0.1, for development. It is pooled by the driver process and reused
  by later contexts.

How tasks run
-------------
- One ember task is one Dask task (:func:`ember_dask._worker.execute`). The executor has one
  *slot* per worker thread of the cluster at start; a task for a slot is restricted to that
  slot's worker, so ember's scheduler knows which worker process ran what (and where the
  partitions it cached are). When a worker leaves the cluster (the scheduler's
  ``remove-worker`` event), its slots move to live workers (their generation changes), and a
  worker that joins takes slots from the busiest one.
- Stage functions travel as ember's scheduler sends them, once per slot; this executor also
  strips the function from a task bound for a worker that has already been sent it by
  another slot, so each worker process gets a stage's function at most once. A worker that
  lost it (restarted, or its cache evicted it) answers ``NeedStage`` and gets it again.
- Results come back through one gatherer thread that collects finished Dask futures in
  batches. Shuffle map outputs do not come back: map tasks keep their buckets in the worker
  (:class:`ember_dask._worker.DaskShuffleStore`) and return a small reference; reduce tasks
  fetch their bucket from the worker holding it.
- Broadcast values are scattered once into the cluster under a fixed key, and fetched by
  each worker process once.

Failures
--------
- A worker killed mid-task: the tasks bound to it (running, queued, or finished with a
  result not yet gathered) fail with :class:`~ember.errors.WorkerLostError`, and ember's
  scheduler runs them again on the slot's new worker (forgetting the partitions the dead one
  cached). Map outputs that lived on the dead worker make the reduce tasks that need them
  fail with :class:`~ember.errors.FetchFailed` naming that worker, and ember's scheduler
  reruns every map task whose output lived there. Of a local cluster, a dead worker process
  is replaced by a new one.
- A lost scheduler fails every running and later task with :class:`DaskSchedulerLostError`,
  which says what happened and how to go on; a streaming context stops with it.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import queue
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Any

import cloudpickle
from distributed import Client
from distributed import Future as DaskFuture
from ember.errors import JobError, RemoteTraceback, WorkerLostError
from ember.executors import Executor, parse_master

from ember_dask._cluster import pooled_cluster
from ember_dask._worker import (
    DaskBroadcastRef,
    DaskShuffleStore,
    EmberWorkerPlugin,
    drop_outputs,
    environment,
    execute,
    take_released,
)

__all__ = ["DaskExecutor", "DaskSchedulerLostError"]

log = logging.getLogger("ember.dask")

#: Stage keys remembered per worker (the worker's own cache holds 64).
_SENT_STAGES = 256
#: Tasks at least this large (pickled) go straight to their worker, not via the scheduler.
_DIRECT_BYTES = 256 * 1024
#: Seconds between two looks at the cluster's membership while submitting (a look is a
#: round trip to the scheduler; workers leaving or joining trigger one at once anyway).
_REFRESH_INTERVAL = 5.0

#: Broadcasts scattered by live executors: key -> (Dask future, pickled bytes, executor).
_broadcasts: dict[str, tuple[DaskFuture, bytes, DaskExecutor]] = {}
_broadcasts_lock = threading.Lock()


def release_broadcast(key: str) -> None:
    """Forget a scattered broadcast value: its executor unpublishes it, soon, in its thread."""
    with _broadcasts_lock:
        entry = _broadcasts.pop(key, None)
    if entry is not None:
        entry[2]._done.put(("unpublish", key))


class DaskSchedulerLostError(JobError, ConnectionError):
    """The connection to the Dask scheduler was lost: no task can run any more."""


class _Pending:
    """One submitted task: its ember future and what was sent where."""

    __slots__ = ("blob_key", "dask", "future", "target")

    def __init__(self, future: Future, target: str | None, blob_key: str | None,
                 dask: DaskFuture) -> None:
        self.future = future
        self.target = target
        self.blob_key = blob_key
        self.dask = dask


def _address(rest: str) -> str:
    """``://host:port`` → ``tcp://host:port`` (a full Dask address is kept as it is)."""
    target = rest[3:]
    if not target:
        raise ValueError("a dask master needs an address: 'dask://HOST:PORT' (e.g. "
                         "'dask://127.0.0.1:8786'), or 'dask-local[N]' for a local cluster")
    return target if "://" in target else f"tcp://{target}"


class DaskExecutor(Executor):
    """Runs ember's stages on a Dask distributed cluster (see the module docstring).

    Configuration: ``ember.dask.timeout`` (seconds to wait for the scheduler and the first
    worker, default 60); ``ember.dask.directToWorkers`` (default true: large tasks and all
    results go straight between the driver and the workers; false sends everything through
    the scheduler, for a driver that can reach only the scheduler);
    ``ember.executorEnv.NAME`` sets environment variables of the workers of a local cluster
    (a remote cluster's workers have their own environment).
    """

    name = "dask"
    shares_driver_files = False

    def __init__(self, master: str, conf: Any, local_dir: str) -> None:
        super().__init__(master, conf, local_dir)
        timeout = float(conf.get("ember.dask.timeout") or 60)
        self._direct = (conf.get("ember.dask.directToWorkers") or "true").lower() != "false"
        _scheme, rest = parse_master(master)
        self._uid = uuid.uuid4().hex[:10]
        self.cluster = None
        if rest.startswith("://"):
            self.address = _address(rest)
        else:
            m = re.fullmatch(r"(?:\[(\*|[1-9][0-9]*)\])?", rest)
            if not m:
                raise ValueError(f"unknown master {master!r}: use 'dask://HOST:PORT' for a "
                                 f"running Dask scheduler, or 'dask-local[N]' for N local workers")
            n = int(m.group(1)) if m.group(1) not in (None, "*") else (os.cpu_count() or 1)
            env = {k[len("ember.executorEnv."):]: v for k, v in conf.getAll()
                   if k.startswith("ember.executorEnv.")}
            self.cluster = pooled_cluster(n, env, timeout)
            self.address = self.cluster.address
        self._client = self._connect(timeout)
        try:
            self._setup(timeout)
        except BaseException:
            self._client.close()
            raise

    # ------------------------------------------------------------------ connecting
    def _connect(self, timeout: float) -> Client:
        try:
            return Client(self.address, timeout=timeout, set_as_default=False,
                          direct_to_workers=self._direct)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"ember could not connect to the Dask scheduler at {self.address} "
                f"({type(exc).__name__}: {exc}). Start one with `dask scheduler` and workers "
                f"with `dask worker {self.address}`, check the address and the firewall, or "
                f"use master 'dask-local[2]' for a local cluster"
            ) from exc

    def _setup(self, timeout: float) -> None:
        client = self._client
        wanted = 1
        if self.cluster is not None:  # a local cluster: all of its workers, alive
            self.cluster.replace_dead_workers()
            wanted = self.cluster.n_workers
        try:
            client.wait_for_workers(wanted, timeout=timeout)
        except TimeoutError as exc:
            raise TimeoutError(
                f"the Dask scheduler at {self.address} has no worker after {timeout}s: start "
                f"some with `dask worker {self.address} --nthreads 1`"
            ) from exc
        self._check_environment()
        client.register_plugin(EmberWorkerPlugin(), name="ember")
        workers = self._workers()
        self._slots: list[str] = [
            addr for addr, info in sorted(workers.items())
            for _ in range(max(1, int(info.get("nthreads", 1))))
        ]
        self._generation = [0] * len(self._slots)
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._sent: dict[str, OrderedDict[str, None]] = {}
        self._pids: dict[str, int] = {}
        self._keys = itertools.count()
        self._refreshed = time.monotonic()
        self._dead: set[str] = set()
        self._closed = False
        #: Keys of finished Dask futures, ("unpublish", key) requests, None to stop.
        self._done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._senders = ThreadPoolExecutor(4, thread_name_prefix=f"ember-dask-send-{self._uid}")
        self._gatherer = threading.Thread(target=self._gather_loop, daemon=True,
                                          name=f"ember-dask-gatherer-{self._uid}")
        self._gatherer.start()
        self._store = DaskShuffleStore(f"ember-{self._uid}-")
        client.subscribe_topic("all", self._on_cluster_event)

    def _check_environment(self) -> None:
        mine = environment()
        try:
            theirs = self._client.run(environment)
        except ImportError as exc:
            raise ImportError(
                f"the Dask workers at {self.address} cannot import ember-dask ({exc}); install "
                f"the same ember-core and ember-dask versions on every worker machine"
            ) from exc
        for addr, env in theirs.items():
            if env != mine:
                raise RuntimeError(
                    f"Dask worker {addr} runs {env}, but this driver runs {mine}: ember ships "
                    f"functions with cloudpickle, which needs the same Python, ember-core and "
                    f"cloudpickle versions everywhere; install matching versions on the workers"
                )

    def _workers(self) -> dict[str, dict[str, Any]]:
        return dict(self._client.scheduler_info(n_workers=-1).get("workers", {}))

    # ------------------------------------------------------------------ the contract
    @property
    def num_slots(self) -> int:
        """One slot per worker thread of the cluster when the context started."""
        return len(self._slots)

    def generation(self, slot: int) -> int:
        """Changes when the slot moves to another worker (its own died or left)."""
        return self._generation[slot]

    def worker_pids(self) -> list[int]:
        """The process ids of the live Dask workers (asked of the workers themselves)."""
        try:
            return sorted(self._client.run(os.getpid, on_error="ignore").values())
        except Exception:
            return []

    def map_output_store(self) -> DaskShuffleStore:
        """Map outputs stay in the memory of the worker that computed them."""
        return self._store

    def put_broadcast(self, bid: int, data: bytes) -> DaskBroadcastRef:
        """Scatter a broadcast value's bytes into the cluster, once."""
        key = f"ember-broadcast-{self._uid}-{bid}"
        self._check_connected()
        future = self._scatter(key, data)
        with _broadcasts_lock:
            _broadcasts[key] = (future, data, self)
        return DaskBroadcastRef(key)

    def _scatter(self, key: str, data: bytes) -> DaskFuture:
        future = self._client.scatter({key: data}, hash=False)[key]
        self._client.publish_dataset(future, name=key, override=True)
        return future

    def submit(self, fn: Callable[..., Any], *args: Any, slot: int | None = None) -> Future:
        """Submit ``fn(*args)`` as a Dask task, restricted to ``slot``'s worker."""
        future: Future = Future()
        try:
            self._check_connected()
        except DaskSchedulerLostError as exc:
            future.set_exception(exc)
            return future
        self._maybe_refresh()
        target = self._slots[slot % len(self._slots)] if slot is not None else None
        if target in self._dead:  # no live worker known yet: any worker, when one comes
            target = None
        args, blob_key = self._strip_known_stage(fn, args, target)
        try:
            data = cloudpickle.dumps((fn, args), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            future.set_exception(exc)
            return future
        drops = take_released(target) if target is not None else ()
        key = f"ember-{getattr(fn, '__name__', 'task')}-{self._uid}-{next(self._keys)}"
        if self._direct and len(data) >= _DIRECT_BYTES and target is not None:
            # Sending it takes a while: in the background, so the next task (e.g. the other
            # half of a batch, for another worker) is on its way at the same time.
            self._senders.submit(self._dispatch, future, key, data, drops, target, blob_key)
        else:
            self._dispatch(future, key, data, drops, target, blob_key)
        return future

    def _dispatch(self, future: Future, key: str, data: bytes, drops: tuple[str, ...],
                  target: str | None, blob_key: str | None) -> None:
        """Hand one task to Dask (large ones straight to their worker first)."""
        if future.cancelled():
            return
        payload: Any = data
        try:
            if self._direct and len(data) >= _DIRECT_BYTES and target is not None:
                payload = self._send_direct(data, target)
            dask_future = self._client.submit(
                execute, payload, drops, key=key, workers=[target] if target else None,
                pure=False,
            )
        except Exception as exc:  # e.g. the client is closing: the task could not start
            lost = self._client.status != "running" and not self._closed
            _settle(future, exc=self._scheduler_lost() if lost else exc)
            return
        with self._lock:
            self._pending[key] = _Pending(future, target, blob_key, dask_future)
            died = target in self._dead  # it died while this task was on its way
        dask_future.add_done_callback(self._on_dask_done)
        if died:
            self._fail_tasks_of(target)  # type: ignore[arg-type]
        future.add_done_callback(lambda f: f.cancelled() and dask_future.cancel())

    def shutdown(self, wait: bool = True) -> None:
        """Drop this executor's map outputs and broadcasts from the workers; disconnect.

        A local cluster stays up for later contexts of this driver process (it stops at
        exit, or with :func:`ember_dask.shutdown_local_clusters`).
        """
        if self._closed:
            return
        self._closed = True
        with _broadcasts_lock:
            mine = [k for k, v in _broadcasts.items() if v[2] is self]
            for key in mine:
                del _broadcasts[key]
        if self._client.status == "running":
            try:
                self._client.run(drop_outputs, f"ember-{self._uid}-", on_error="ignore")
                for key in mine:
                    self._client.unpublish_dataset(key)
            except Exception:
                log.debug("could not clean up after executor %s", self._uid, exc_info=True)
        self._senders.shutdown(wait=True)
        with self._lock:
            running = [p.future for p in self._pending.values()]
        if wait and running:  # e.g. the context's last clean-up tasks on every worker
            futures_wait(running, timeout=10)
        self._done.put(None)
        self._gatherer.join(10)
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for p in pending:
            p.dask.cancel()
            _settle(p.future, exc=WorkerLostError("the executor was shut down"))
        self._client.close()

    # ------------------------------------------------------------------ internals
    def _check_connected(self) -> None:
        if self._closed:
            raise RuntimeError("this Dask executor was shut down")
        if self._client.status != "running":
            raise self._scheduler_lost()

    def _scheduler_lost(self) -> DaskSchedulerLostError:
        return DaskSchedulerLostError(
            f"ember lost its connection to the Dask scheduler at {self.address} (client "
            f"status {self._client.status!r}): the scheduler stopped or the network failed, "
            f"and every task it held is gone. Restart the scheduler (`dask scheduler`) and "
            f"the workers (`dask worker {self.address}`), then start the application again; "
            f"a streaming application that uses ssc.checkpoint() and "
            f"StreamingContext.getOrCreate() resumes from its last checkpoint."
        )

    def _send_direct(self, data: bytes, target: str) -> Any:
        """Put a large task (a received block, a parallelized slice) straight into its worker,
        not through the scheduler, which would receive, copy and forward it; the task then
        depends on it (and it is released with the task)."""
        try:
            return self._client.scatter([data], workers=[target], direct=True, hash=False)[0]
        except Exception:  # the driver cannot reach the worker itself: via the scheduler
            log.debug("direct scatter to %s failed", target, exc_info=True)
            return data

    def _strip_known_stage(self, fn: Callable[..., Any], args: tuple,
                           target: str | None) -> tuple[tuple, str | None]:
        """Drop a stage function the target worker already got from another slot."""
        from ember._engine.worker import run_task

        if fn is not run_task or target is None or len(args) < 2 or not isinstance(args[1], bytes):
            return args, None
        stage_key = args[0]
        with self._lock:
            sent = self._sent.setdefault(target, OrderedDict())
            if stage_key in sent:
                sent.move_to_end(stage_key)
                return (stage_key, None, *args[2:]), None
            sent[stage_key] = None
            while len(sent) > _SENT_STAGES:
                sent.popitem(last=False)
        return args, stage_key

    def _maybe_refresh(self) -> None:
        now = time.monotonic()
        if now - self._refreshed < _REFRESH_INTERVAL:
            return
        self._refreshed = now
        self._refresh()

    def _refresh(self) -> None:
        """Follow the cluster's membership: move the slots of workers that left to live ones,
        and give workers that joined (replacements) a share of the slots."""
        try:
            known = self._workers()
        except Exception:
            return
        with self._lock:
            live = {a: info for a, info in known.items() if a not in self._dead}
            if not live:
                return
            load = {addr: 0 for addr in live}
            for addr in self._slots:
                if addr in load:
                    load[addr] += 1
            gone = [addr for addr in set(self._slots) if addr not in live]
            for slot, addr in enumerate(self._slots):
                if addr not in live:
                    self._move(slot, min(sorted(load), key=load.__getitem__), load)
            while True:  # a worker without a slot takes one from the busiest worker
                idle = [a for a in sorted(load) if load[a] == 0]
                busiest = max(sorted(load), key=load.__getitem__)
                if not idle or load[busiest] <= int(live[busiest].get("nthreads", 1)):
                    break
                slot = max(i for i, a in enumerate(self._slots) if a == busiest)
                self._move(slot, idle[0], load)
            for addr in gone:
                self._sent.pop(addr, None)
                take_released(addr)  # its map outputs died with it
        if gone and self.cluster is not None:
            self.cluster.replace_dead_workers()

    def _move(self, slot: int, to: str, load: dict[str, int]) -> None:
        """Give ``slot`` to the worker at ``to`` (called with the lock held)."""
        old = self._slots[slot]
        if old in load:
            load[old] -= 1
        load[to] += 1
        self._slots[slot] = to
        self._generation[slot] += 1

    def _on_cluster_event(self, event: tuple[float, dict[str, Any]]) -> None:
        """The scheduler's ``all`` topic (in the client's event loop: must not block)."""
        msg = event[1] if isinstance(event, tuple) else event
        if not isinstance(msg, dict):
            return
        action, address = msg.get("action"), msg.get("worker")
        if action == "remove-worker" and address:
            with self._lock:
                self._dead.add(address)
            self._refreshed = 0.0
            # Cancelling Dask futures is a blocking client call: not in the event loop.
            threading.Thread(target=self._fail_tasks_of, args=(address,), daemon=True,
                             name=f"ember-dask-worker-lost-{self._uid}").start()
        elif action == "add-worker" and address:
            with self._lock:
                self._dead.discard(address)
            self._refreshed = 0.0

    def _fail_tasks_of(self, address: str) -> None:
        """Tasks bound to a dead worker (running, queued, or with a result not yet gathered)
        fail with WorkerLostError: ember's scheduler runs them again on a live worker."""
        with self._lock:
            lost = [k for k, p in self._pending.items() if p.target == address]
            tasks = [self._pending.pop(k) for k in lost]
        for p in tasks:
            p.dask.cancel()
            _settle(p.future, exc=WorkerLostError(
                f"Dask worker {address} left the cluster (it died or was stopped) while it "
                f"held this task; the task runs again on another worker"))

    def _on_dask_done(self, dask_future: DaskFuture) -> None:
        self._done.put(dask_future.key)

    def _gather_loop(self) -> None:
        while True:
            key = self._done.get()
            keys = [key]
            while True:  # take every future that finished meanwhile: one gather for all
                try:
                    keys.append(self._done.get_nowait())
                except queue.Empty:
                    break
            for item in keys:
                if isinstance(item, tuple):
                    self._unpublish(item[1])
            with self._lock:
                batch = [self._pending.pop(k) for k in keys
                         if isinstance(k, str) and k in self._pending]
            finished = [p for p in batch if p.dask.status == "finished"]
            for p in batch:
                if p.dask.status != "finished":
                    self._failed(p)
            if finished:
                try:
                    outcomes = self._client.gather([p.dask for p in finished])
                except Exception:
                    outcomes = None
                for i, p in enumerate(finished):
                    if outcomes is not None:
                        self._finished(p, outcomes[i])
                        continue
                    try:
                        self._finished(p, p.dask.result(timeout=60))
                    except Exception:
                        self._failed(p)
            if None in keys:
                return

    def _finished(self, p: _Pending, outcome: tuple[str, int, bool, Any]) -> None:
        from ember._engine.worker import NeedStage, TaskResult

        address, pid, ok, value = outcome
        with self._lock:
            if self._pids.get(address, pid) != pid:  # a new process at the same address
                self._sent.pop(address, None)
            self._pids[address] = pid
            if isinstance(value, NeedStage):
                for addr in (address, p.target):
                    self._sent.get(addr, {}).pop(value.stage_key, None)  # type: ignore[call-overload]
            elif p.blob_key is not None and address != p.target:
                self._sent.get(p.target, {}).pop(p.blob_key, None)  # type: ignore[call-overload]
                self._sent.setdefault(address, OrderedDict())[p.blob_key] = None
        if p.target is not None and address != p.target:
            self._refreshed = 0.0  # its worker may be gone: look again at the next submit
        if not ok:
            message, text, error = value
            if error is None:
                error = RuntimeError(message)
            error.__cause__ = RemoteTraceback(text)
            _settle(p.future, exc=error)
            return
        if isinstance(value, TaskResult) and not value.ok and "BroadcastLostError" in value.error_type:
            self._rescatter_broadcasts()
        _settle(p.future, result=value)

    def _failed(self, p: _Pending) -> None:
        """A Dask future that ended without a result: map Dask's reason to ember's."""
        status = p.dask.status
        if self._client.status != "running" and not self._closed:
            _settle(p.future, exc=self._scheduler_lost())
            return
        if status == "error":
            try:
                exc = p.dask.exception(timeout=10)
            except Exception as inner:
                exc = inner
            if type(exc).__name__ == "KilledWorker":
                lost = WorkerLostError(f"Dask gave up on the task after its workers died: {exc}")
                _settle(p.future, exc=lost)
                return
            _settle(p.future, exc=exc)
            return
        _settle(p.future, exc=WorkerLostError(
            f"the Dask task {p.dask.key} was {status} (its worker or its data was lost)"))

    def _unpublish(self, key: str) -> None:
        try:
            self._client.unpublish_dataset(key)
        except Exception:  # already gone, or the scheduler is
            log.debug("could not unpublish broadcast %s", key, exc_info=True)

    def _rescatter_broadcasts(self) -> None:
        """Scatter again the broadcast values of this executor that the cluster lost."""
        with _broadcasts_lock:
            mine = {k: v for k, v in _broadcasts.items() if v[2] is self}
        for key, (fut, data, _) in mine.items():
            if fut.status == "finished":
                continue
            try:
                new = self._scatter(key, data)
            except Exception:
                log.warning("could not scatter broadcast %s again", key, exc_info=True)
                continue
            with _broadcasts_lock:
                if key in _broadcasts:
                    _broadcasts[key] = (new, data, self)


def _settle(future: Future, *, result: Any = None, exc: BaseException | None = None) -> None:
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)
    except InvalidStateError:  # cancelled by its job: nothing waits for it
        pass
