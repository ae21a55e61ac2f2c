"""The executor plugin contract: what runs a stage's tasks.

The master URL's scheme names the executor plugin (entry-point group ``ember.executors``):
``local[N]`` → ``local`` (N worker processes on this machine), ``inline`` (in the driver
process, for debugging), ``dask://host:port`` → ``dask``.

An executor has a fixed number of worker *slots*. The scheduler may ask for a task to run on a
given slot (so a task reads the partition a worker cached in its memory); an executor that
cannot place tasks ignores the hint. Each slot has a *generation* that changes when the worker
behind it is replaced (after it died), so the scheduler knows what that worker has lost.

Workers on other machines
-------------------------
By default the engine assumes the workers run on the driver's machine: shuffle map outputs
are files in the context's local directory, broadcast values are files there too, and
serialized cached blocks are files in a shared-memory directory, all read by any worker. An
executor whose workers may be elsewhere sets :attr:`Executor.shares_driver_files` to
``False`` and provides the two stores below; then no task reads a file the driver wrote,
serialized and disk-level cached blocks stay (serialized) in the memory of the worker that
computed them, and the only paths tasks touch are the user's own (input files, output
directories, the checkpoint directory), which must then be on a filesystem every machine
shares, as with Spark.

- :meth:`Executor.map_output_store` returns a picklable, deterministic (equal pickles for
  equal stores) object with ``put(shuffle_id, map_id, attempt, buckets) -> output``. A map
  task calls it on its worker with ``buckets[r]``, the bucket for reduce partition ``r``
  (two parallel lists, ``[keys, values]``) serialized with the shuffle's ``dumps_batch``
  (``b""`` when empty). The store keeps the bytes
  (on that worker) and returns a small picklable *map output*, which travels to the driver
  and inside the reduce tasks' splits. ``output.read(reduce_id, serializer, shuffle_id)``
  runs in a reduce task on any worker and returns ``serializer.loads_batch`` of bucket
  ``reduce_id``; when the bytes are gone (their worker died) it raises
  :class:`ember.errors.FetchFailed`, and the scheduler reruns that map task. A map output
  may have a ``location`` attribute (e.g. its worker's address): a ``FetchFailed`` that
  names a location makes the scheduler rerun every map task whose output lived there.
  ``output.remove()`` runs on the driver once the output is no longer needed; it must not
  block.
- :meth:`Executor.put_broadcast` takes a broadcast value's pickled bytes on the driver, once,
  and returns a picklable reference whose ``load()`` returns those bytes in any worker (each
  worker process loads a broadcast once and keeps the value); ``release()``, when the
  reference has it, runs on the driver when the broadcast is destroyed or garbage collected.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ember.conf import Conf

__all__ = ["Executor", "create_executor", "parse_master"]

_MASTER = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9_.+-]*)(?P<rest>(\[.*\]|://.*)?)$")


def parse_master(master: str) -> tuple[str, str]:
    """Split a master URL into its scheme (the executor plugin's name) and the rest.

    >>> parse_master("local[4]")
    ('local', '[4]')
    >>> parse_master("dask://127.0.0.1:8786")
    ('dask', '://127.0.0.1:8786')

    :raises ValueError: when ``master`` is not a master URL.
    """
    if not isinstance(master, str):
        raise TypeError(f"master must be a string such as 'local[2]', got {master!r}")
    m = _MASTER.match(master.strip())
    if not m:
        raise ValueError(
            f"unknown master {master!r}: use 'local', 'local[N]', 'local[*]', 'inline', "
            f"or a URL whose scheme names an installed executor plugin (e.g. 'dask://host:8786')"
        )
    return m.group("scheme"), m.group("rest") or ""


class Executor(ABC):
    """Runs tasks, each a picklable function call, on worker slots.

    Rules:

    - ``submit`` never blocks for long and returns a :class:`concurrent.futures.Future`.
    - A task whose worker died resolves with :class:`ember.errors.WorkerLostError`; the slot
      then gets a new worker (and a new :meth:`generation`) on its next use.
    - Errors raised *by* the function are the function's business: ember's task runner
      catches them and returns them as values, so an executor only reports its own failures.
    - ``shutdown`` releases every thread and process the executor started (pooled workers that
      are reused across contexts may stay until the process exits; say so in the docstring).
    """

    #: The scheme users write in the master URL.
    name: ClassVar[str]
    #: The ember plugin API version this executor was built for.
    api_version: ClassVar[str] = "1.0"
    #: True when tasks run in the driver process: nothing is serialized.
    in_process: ClassVar[bool] = False
    #: False when the workers may run on other machines, so they cannot read files the
    #: driver or another worker wrote to local disk (see "Workers on other machines" above).
    shares_driver_files: ClassVar[bool] = True

    def __init__(self, master: str, conf: Conf, local_dir: str) -> None:
        self.master = master
        self.conf = conf
        self.local_dir = local_dir

    @property
    @abstractmethod
    def num_slots(self) -> int:
        """How many tasks can run at once (``defaultParallelism``)."""

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any, slot: int | None = None) -> Future:
        """Run ``fn(*args)`` on a worker, on ``slot`` when given and possible."""

    def generation(self, slot: int) -> int:
        """A number that changes whenever the worker behind ``slot`` is replaced."""
        return 0

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (empty for in-process executors)."""
        return []

    def map_output_store(self) -> Any | None:
        """The store shuffle map tasks hand their outputs to, or ``None`` for files.

        ``None`` (the default) writes each map output to a file in the driver's local
        directory, which every worker must be able to read. See the module docstring for
        the store's protocol.
        """
        return None

    def put_broadcast(self, bid: int, data: bytes) -> Any | None:
        """Make a broadcast value reachable by the workers; called once per broadcast.

        :param bid: the broadcast's id, unique within the context.
        :param data: the value, pickled with cloudpickle.
        :returns: a picklable reference whose ``load()`` returns ``data`` in a worker, or
            ``None`` (the default) to keep the value in a file in the driver's local directory.
        """
        return None

    @abstractmethod
    def shutdown(self, wait: bool = True) -> None:
        """Stop running tasks and release resources."""


def create_executor(master: str, conf: Conf, local_dir: str) -> Executor:
    """Build the executor a master URL names, loading its plugin by scheme.

    ``local[1]`` and plain ``local`` run in-process like ``inline`` (one slot gains nothing
    from a process boundary), as joblib falls back to sequential for one job.
    """
    from ember.plugins import load_component

    scheme, rest = parse_master(master)
    if scheme == "local" and rest in ("", "[1]"):
        scheme = "inline"
    if scheme == "local" and not re.fullmatch(r"\[(\*|[1-9][0-9]*)\]", rest):
        raise ValueError(
            f"unknown master {master!r}: local masters are 'local', 'local[N]' with N >= 1, "
            f"or 'local[*]' for one worker per CPU ({os.cpu_count()} here)"
        )
    cls = load_component("executors", scheme)
    return cls(master, conf, local_dir)
