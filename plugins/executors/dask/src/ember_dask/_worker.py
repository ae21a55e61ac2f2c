"""What runs inside the Dask workers: the task wrapper, the shuffle store, broadcast loading.

Everything here is imported by reference in the workers, so ``ember-dask`` (and the same
ember-core) must be installed on every worker machine.

- :func:`execute` runs one ember task (``fn(*args)`` pickled by the driver) and returns
  where it ran with its outcome. It first drops the map outputs the driver no longer needs.
- Shuffle map outputs stay in the worker process that computed them (:data:`_OUTPUTS`), as in
  Spark's block manager. A reduce task reads its bucket of each output: straight from the
  process when it is local, else from the owning worker through a ``ember_shuffle_fetch``
  handler that :class:`EmberWorkerPlugin` installs on every worker's Dask server (the
  worker's own comm, so no new port is opened). An owner that is gone is a
  :class:`~ember.errors.FetchFailed`: the driver reruns that map task.
"""

from __future__ import annotations

import itertools
import os
import pickle
import threading
import traceback
from typing import Any

import attrs
from distributed import WorkerPlugin, get_client, get_worker
from distributed.utils import sync
from ember.errors import FetchFailed

__all__ = [
    "DaskBroadcastRef",
    "DaskMapOutput",
    "DaskShuffleStore",
    "EmberWorkerPlugin",
    "environment",
    "execute",
]

#: Map outputs kept by this worker process: key -> one bytes object per reduce partition.
_OUTPUTS: dict[str, list[bytes]] = {}
_outputs_lock = threading.Lock()
_output_ids = itertools.count()
#: Seconds a reduce task waits for another worker to send it a bucket.
FETCH_TIMEOUT = 60.0
#: Seconds of trying to connect to another worker before asking the scheduler if it lives.
CONNECT_PATIENCE = 0.5


def environment() -> dict[str, str]:
    """The versions that must match between the driver and the workers."""
    import platform

    import cloudpickle
    import ember

    return {
        "python": ".".join(platform.python_version_tuple()[:2]),
        "ember-core": ember.__version__,
        "cloudpickle": cloudpickle.__version__,
    }


# --------------------------------------------------------------------------- running tasks


def _failure(exc: BaseException) -> tuple[str, str, BaseException | None]:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    exc.__traceback__ = None
    try:
        pickle.loads(pickle.dumps(exc))
        kept: BaseException | None = exc
    except Exception:
        kept = None
    return f"{type(exc).__name__}: {exc}", text, kept


def execute(data: bytes, drops: tuple[str, ...] = ()) -> tuple[str, int, bool, Any]:
    """Run one ember task inside a Dask worker.

    :param data: ``(fn, args)`` pickled with cloudpickle by the driver.
    :param drops: keys of map outputs of this worker the driver no longer needs.
    :returns: ``(worker address, pid, ok, value)``: ``value`` is ``fn(*args)`` when ``ok``,
        else ``(message, traceback text, the error if it pickles)``.
    """
    address = get_worker().address
    if drops:
        with _outputs_lock:
            for key in drops:
                _OUTPUTS.pop(key, None)
    try:
        fn, args = pickle.loads(data)
        return address, os.getpid(), True, fn(*args)
    except BaseException as exc:
        return address, os.getpid(), False, _failure(exc)


def drop_outputs(prefix: str) -> int:
    """Drop every map output whose key starts with ``prefix`` (an executor shutting down)."""
    with _outputs_lock:
        doomed = [k for k in _OUTPUTS if k.startswith(prefix)]
        for k in doomed:
            del _OUTPUTS[k]
    return len(doomed)


# --------------------------------------------------------------------------- shuffles

#: Driver side: map outputs released by the engine, by worker address, waiting to be sent
#: to that worker with its next task (see ``DaskExecutor``).
_released: dict[str, list[str]] = {}
_released_lock = threading.Lock()


def take_released(address: str) -> tuple[str, ...]:
    """Driver side: the released map output keys of ``address``, forgotten as they are taken."""
    with _released_lock:
        keys = _released.pop(address, None)
    return tuple(keys) if keys else ()


@attrs.frozen
class DaskMapOutput:
    """One map task's output, kept in the memory of the worker at ``address``.

    :param map_id: the map task's partition.
    :param address: the Dask address of the worker holding it.
    :param key: its name in that worker's store.
    :param sizes: bytes per reduce partition (empty buckets are never fetched).
    """

    map_id: int
    address: str
    key: str
    sizes: tuple[int, ...]

    @property
    def location(self) -> str:
        """Where it lives: every output at a location is lost when one is found lost."""
        return self.address

    def read(self, reduce_id: int, serializer: Any, shuffle_id: int) -> list:
        """Bucket ``reduce_id``'s records (in a reduce task, on any worker).

        :raises FetchFailed: the worker holding the output is gone or no longer has it.
        """
        if not self.sizes[reduce_id]:
            return []
        worker = get_worker()
        if worker.address == self.address:
            with _outputs_lock:
                buckets = _OUTPUTS.get(self.key)
            if buckets is None:
                raise FetchFailed(shuffle_id, self.map_id,
                                  f"{self.key} is no longer on worker {self.address}",
                                  location=self.address)
            data = buckets[reduce_id]
        else:
            data = _fetch_remote(worker, self, reduce_id, shuffle_id)
        return serializer.loads_batch(data)

    def remove(self) -> None:
        """Driver side: ask the owning worker to drop it (sent with its next task)."""
        with _released_lock:
            _released.setdefault(self.address, []).append(self.key)


def _fetch_remote(worker: Any, output: DaskMapOutput, reduce_id: int, shuffle_id: int) -> bytes:
    try:
        reply = sync(worker.loop, _fetch, worker, output.address, output.key, reduce_id,
                     callback_timeout=FETCH_TIMEOUT)
    except Exception as exc:  # connection refused, closed, timed out: the worker is gone
        raise FetchFailed(shuffle_id, output.map_id,
                          f"worker {output.address} did not send it: "
                          f"{type(exc).__name__}: {exc}", location=output.address) from exc
    if reply is None:
        raise FetchFailed(shuffle_id, output.map_id,
                          f"{output.key} is no longer on worker {output.address}",
                          location=output.address)
    return reply.data if hasattr(reply, "data") else reply


async def _fetch(worker: Any, address: str, key: str, reduce_id: int) -> Any:
    """One bucket from the worker at ``address``, through the worker's connection pool.

    Dask retries a refused connection until its connect timeout (30 s); a worker that died
    must fail faster than that, so when connecting takes over ``CONNECT_PATIENCE`` seconds
    the scheduler is asked whether that worker still exists.
    """
    import asyncio

    from distributed.core import send_recv

    connecting = asyncio.ensure_future(worker.rpc.connect(address))
    try:
        comm = await asyncio.wait_for(asyncio.shield(connecting), CONNECT_PATIENCE)
    except asyncio.TimeoutError:
        known = await worker.scheduler.ncores(workers=[address])
        if address not in known:
            connecting.cancel()
            raise ConnectionError(f"the scheduler no longer knows worker {address}") from None
        comm = await connecting
    try:
        reply = await send_recv(comm, op="ember_shuffle_fetch", key=key, reduce_id=reduce_id)
    except BaseException:
        comm.abort()
        raise
    worker.rpc.reuse(address, comm)
    return reply


@attrs.frozen
class DaskShuffleStore:
    """The map output store of one Dask executor (``Executor.map_output_store``).

    :param prefix: starts the key of every output it keeps, so the executor can drop them all.
    """

    prefix: str

    def put(self, shuffle_id: int, map_id: int, attempt: int,
            buckets: list[bytes]) -> DaskMapOutput:
        """Keep a map task's serialized buckets in this worker; return their reference."""
        key = f"{self.prefix}{shuffle_id}-{map_id}-{attempt}-{os.getpid()}-{next(_output_ids)}"
        with _outputs_lock:
            _OUTPUTS[key] = buckets
        return DaskMapOutput(map_id, get_worker().address, key, tuple(len(b) for b in buckets))


async def _serve_fetch(key: str, reduce_id: int) -> Any:
    """The ``ember_shuffle_fetch`` handler: one bucket of a map output held here, or None."""
    from distributed.protocol import to_serialize

    with _outputs_lock:
        buckets = _OUTPUTS.get(key)
    if buckets is None:
        return None
    return to_serialize(buckets[reduce_id])


class EmberWorkerPlugin(WorkerPlugin):
    """Installs the shuffle fetch handler on every worker (also on workers that join later)."""

    name = "ember"

    def setup(self, worker: Any) -> None:
        """Register ``ember_shuffle_fetch`` on the worker's server."""
        worker.handlers["ember_shuffle_fetch"] = _serve_fetch

    def teardown(self, worker: Any) -> None:
        """Unregister the handler (the worker's map outputs die with the process anyway)."""
        worker.handlers.pop("ember_shuffle_fetch", None)


# --------------------------------------------------------------------------- broadcasts


class BroadcastLostError(RuntimeError):
    """A broadcast value is no longer held anywhere in the Dask cluster."""


@attrs.frozen
class DaskBroadcastRef:
    """A broadcast value's pickled bytes, scattered once into the Dask cluster.

    :param key: the Dask key holding the bytes, also the name it is published under (workers
        find it with ``get_dataset``).
    """

    key: str

    def load(self) -> bytes:
        """Worker side: the bytes, from this worker's memory or fetched from the cluster."""
        worker = get_worker()
        try:
            return worker.data[self.key]
        except KeyError:
            pass
        try:
            future = get_client().get_dataset(self.key)
            return future.result(timeout=FETCH_TIMEOUT)
        except Exception as exc:
            raise BroadcastLostError(
                f"the broadcast value {self.key} could not be fetched from the Dask cluster "
                f"({type(exc).__name__}: {exc}); the driver scatters it again and the task "
                f"is retried"
            ) from exc

    def release(self) -> None:
        """Driver side: let the cluster drop the value (the broadcast was destroyed)."""
        from ember_dask._executor import release_broadcast

        release_broadcast(self.key)
