"""``Context``: the entry point of the batch engine (PySpark's ``SparkContext``)."""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import re
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ember._engine import worker
from ember._engine.storage import BlockRegistry, CheckpointSplit, write_checkpoint_part
from ember.accumulators import Accumulator, AccumulatorParam, default_param
from ember.broadcast import Broadcast
from ember.conf import Conf
from ember.errors import ContextError
from ember.rdd import RDD

__all__ = ["Context"]

log = logging.getLogger("ember")

_active_lock = threading.RLock()
_active: Context | None = None
# Accumulator ids are unique in the process: workers and the driver registry outlive contexts.
_ACCUMULATOR_IDS = itertools.count()


class Context:
    """The connection to ember's engine: makes RDDs, broadcasts and accumulators, runs jobs.

    :param master: where tasks run: ``"local[N]"`` (N worker processes), ``"local[*]"`` (one
        per CPU), ``"local"``/``"inline"`` (in this process, for debugging), or a URL whose
        scheme names an executor plugin (``"dask://host:8786"``). Default: the conf's
        ``ember.master``, else ``"local[*]"``.
    :param appName: a name for logs and the UI. Default: the conf's ``ember.app.name``.
    :param conf: a :class:`~ember.Conf`; its values override the plugins' defaults.

    Only one context can be active in a process; use it as a context manager or call
    :meth:`stop`.

    >>> with Context("inline", "demo") as sc:
    ...     sc.parallelize(range(10)).filter(lambda x: x % 2).count()
    5
    """

    def __init__(self, master: str | None = None, appName: str | None = None,
                 conf: Conf | None = None) -> None:
        global _active
        from ember._hooks import Hooks
        from ember.executors import create_executor, parse_master
        from ember.plugins import get_plugin_manager, merged_config_defaults

        if conf is not None and not isinstance(conf, Conf):
            raise TypeError(f"conf must be an ember.Conf, got {type(conf).__name__}")
        self._conf = conf.copy() if conf is not None else Conf()
        if master is not None:
            self._conf.setMaster(master)
        if appName is not None:
            self._conf.setAppName(appName)
        self._conf.setIfMissing("ember.master", "local[*]")
        self._conf.setIfMissing("ember.app.name", "ember")
        self.master: str = self._conf.get("ember.master")  # type: ignore[assignment]
        self.appName: str = self._conf.get("ember.app.name")  # type: ignore[assignment]
        parse_master(self.master)  # a malformed master fails before anything starts

        with _active_lock:
            if _active is not None:
                raise ContextError(
                    f"another Context ({_active.appName!r}, master {_active.master!r}) is "
                    f"already running in this process; stop it first, or use "
                    f"Context.getOrCreate() to reuse it"
                )
            self._pm = get_plugin_manager()
            self._hooks = Hooks(self._pm)
            self._conf._defaults = merged_config_defaults(self._pm)
            self._hooks.configure(self._conf)
            self._stopped = False
            self._uid = uuid.uuid4().hex[:12]
            self._ids = itertools.count()
            self._shuffle_ids = itertools.count()
            self._shuffles: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
            self._bids = itertools.count()
            self._blocks = BlockRegistry()
            self._checkpoint_dir: str | None = None
            base = self._conf.get("ember.local.dir") or None
            if base is None:  # the machine's own temporary directory: pids are this machine's
                _remove_stale_dirs(tempfile.gettempdir(), "ember-")
            self._local_dir = tempfile.mkdtemp(prefix=f"ember-{os.getpid()}-", dir=base)
            shm = "/dev/shm"
            if os.path.isdir(shm) and os.access(shm, os.W_OK) and base is None:
                _remove_stale_dirs(shm, "ember-blocks-")
                self._memory_dir = tempfile.mkdtemp(prefix=f"ember-blocks-{os.getpid()}-",
                                                    dir=shm)
            else:
                self._memory_dir = os.path.join(self._local_dir, "memory-blocks")
                os.makedirs(self._memory_dir)
            self._disk_dir = os.path.join(self._local_dir, "disk-blocks")
            os.makedirs(self._disk_dir)
            # a context never stopped still leaves no files behind when the process exits
            self._dirs_finalizer = weakref.finalize(
                self, _remove_trees, self._local_dir, self._memory_dir)
            from ember._engine.scheduler import Scheduler

            try:
                self._executor = create_executor(self.master, self._conf, self._local_dir)
                self._scheduler = Scheduler(self)
            except BaseException:
                self._remove_dirs()
                raise
            _active = self
        self._hooks.context_started(self)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def getOrCreate(cls, conf: Conf | None = None) -> Context:
        """The active context, or a new one built from ``conf``."""
        with _active_lock:
            if _active is not None:
                return _active
            return cls(conf=conf)

    @classmethod
    def _get_active(cls) -> Context | None:
        return _active

    def stop(self) -> None:
        """Stop the context: no more jobs; temporary files removed. Safe to call twice."""
        global _active
        with _active_lock:
            if self._stopped:
                return
            self._stopped = True
            if _active is self:
                _active = None
        try:
            self._release_workers()
            self._executor.shutdown(wait=True)
        finally:
            self._remove_dirs()
            self._hooks.context_stopped(self)

    def _release_workers(self) -> None:
        """Drop this context's cached blocks and broadcast values from the (pooled) workers."""
        args = (f"rdd_{self._uid}_", self._local_dir)
        if self._executor.in_process:
            worker.forget_context(*args)
            return
        for slot in range(self._executor.num_slots):
            try:
                self._executor.submit(worker.forget_context, *args, slot=slot)
            except Exception:  # a broken worker has nothing left to drop
                log.debug("could not release worker slot %d", slot, exc_info=True)

    def _remove_dirs(self) -> None:
        finalizer = getattr(self, "_dirs_finalizer", None)
        if finalizer is not None:
            finalizer()
        else:
            _remove_trees(self._local_dir, getattr(self, "_memory_dir", ""))

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _check_running(self) -> None:
        if self._stopped:
            raise ContextError(
                f"this Context ({self.appName!r}) has been stopped; create a new Context"
            )

    # ------------------------------------------------------------------ properties
    @property
    def defaultParallelism(self) -> int:
        """How many tasks run at once: the default number of partitions."""
        return self._executor.num_slots

    @property
    def defaultMinPartitions(self) -> int:
        """The default minimum number of partitions of ``textFile``: ``min(defaultParallelism, 2)``."""
        return min(self.defaultParallelism, 2)

    @property
    def version(self) -> str:
        """The ember-core version."""
        from ember import __version__

        return __version__

    def getConf(self) -> Conf:
        """A copy of this context's configuration."""
        return self._conf.copy()

    # ------------------------------------------------------------------ making RDDs
    def parallelize(self, c: Iterable[Any], numSlices: int | None = None) -> RDD:
        """An RDD of the elements of ``c``, cut into ``numSlices`` contiguous partitions.

        >>> with Context("inline") as sc:
        ...     sc.parallelize(range(1, 5), 2).glom().collect()
        [[1, 2], [3, 4]]
        """
        self._check_running()
        if numSlices is None:
            numSlices = self.defaultParallelism
        if isinstance(numSlices, bool) or not isinstance(numSlices, int) or numSlices < 1:
            raise ValueError(f"numSlices must be an integer >= 1, got {numSlices!r}")
        if isinstance(c, (str, bytes)) or not isinstance(c, Iterable):
            raise TypeError(
                f"parallelize expects a collection such as a list or range, got "
                f"{type(c).__name__}"
            )
        from ember._engine.rdds import ParallelCollectionRDD

        return ParallelCollectionRDD(self, c, numSlices)

    def range(self, start: int, end: int | None = None, step: int = 1,
              numSlices: int | None = None) -> RDD:
        """An RDD of ``range(start, end, step)`` (``range(start)`` when ``end`` is omitted)."""
        if end is None:
            start, end = 0, start
        return self.parallelize(range(start, end, step), numSlices)

    def emptyRDD(self) -> RDD:
        """An RDD with no partitions and no elements."""
        self._check_running()
        from ember._engine.rdds import ParallelCollectionRDD

        rdd = ParallelCollectionRDD(self, [], 1)
        rdd._split_list = []
        return rdd

    def textFile(self, name: str | list[str], minPartitions: int | None = None,
                 use_unicode: bool = True) -> RDD:
        """The lines of a text file, a directory of them, a glob or a comma-separated list.

        Lines are decoded as UTF-8 (``bytes`` with ``use_unicode=False``) without their line
        endings; ``.gz`` files are decompressed. Files are split into byte ranges read in
        parallel by the workers. ``name`` may also be a list of paths, each taken exactly
        as written (no comma splitting or glob matching).
        """
        self._check_running()
        from ember._engine.rdds import TextFileRDD

        return TextFileRDD(self, name, minPartitions or self.defaultMinPartitions, use_unicode)

    def binaryRecords(self, path: str | list[str], recordLength: int,
                      minPartitions: int | None = None) -> RDD:
        """The fixed-length records of flat binary files, each a ``bytes`` of ``recordLength``.

        ``path`` is a file, a directory, a glob, a comma-separated list or a list of exact
        paths (as for :meth:`textFile`). Files are split at record boundaries and read in
        parallel by the workers.

        :raises ValueError: ``recordLength`` is not an integer >= 1, or a file's size is not
            a multiple of it (the error names the file; nothing is silently truncated).
        """
        self._check_running()
        from ember._engine.rdds import BinaryRecordsRDD

        return BinaryRecordsRDD(self, path, recordLength,
                                minPartitions or self.defaultMinPartitions)

    def pickleFile(self, name: str, minPartitions: int | None = None) -> RDD:
        """Records saved with :meth:`RDD.saveAsPickleFile`."""
        self._check_running()
        from ember._engine.inputs import list_input_files
        from ember._engine.rdds import PickleFileRDD

        paths = [p for p in list_input_files(name) if os.path.basename(p).startswith("part-")]
        return PickleFileRDD(self, paths)

    def union(self, rdds: list[RDD]) -> RDD:
        """The elements of all ``rdds``, partitions in order."""
        self._check_running()
        rdds = list(rdds)
        if not rdds:
            raise ValueError("union needs at least one RDD")
        for r in rdds:
            if not isinstance(r, RDD):
                raise TypeError(f"union expects RDDs, got {type(r).__name__}")
            if r.ctx is not self:
                raise ValueError(f"{r!r} belongs to another Context")
        from ember._engine.rdds import UnionRDD

        return UnionRDD(self, rdds)

    def broadcast(self, value: Any) -> Broadcast[Any]:
        """A read-only value sent to each worker once."""
        self._check_running()
        if self._executor.in_process:
            return Broadcast(next(self._bids), value, None)
        return Broadcast(next(self._bids), value, self._local_dir, self._executor.put_broadcast)

    def accumulator(self, value: Any,
                    accum_param: AccumulatorParam[Any] | None = None) -> Accumulator[Any]:
        """An accumulator starting at ``value``; numbers and lists work without ``accum_param``."""
        self._check_running()
        return Accumulator(next(_ACCUMULATOR_IDS), value, accum_param or default_param(value))

    def setCheckpointDir(self, dirName: str) -> None:
        """The directory ``RDD.checkpoint`` saves into (created if missing)."""
        path = os.path.abspath(os.path.expanduser(dirName))
        os.makedirs(path, exist_ok=True)
        self._checkpoint_dir = os.path.join(path, str(uuid.uuid4()))
        os.makedirs(self._checkpoint_dir)

    def getCheckpointDir(self) -> str | None:
        """The directory checkpoints go to, if set."""
        return self._checkpoint_dir

    def runJob(self, rdd: RDD, partitionFunc: Callable[[Iterator[Any]], Iterable[Any]],
               partitions: list[int] | None = None) -> list[Any]:
        """Run ``partitionFunc`` on the given partitions and return all the elements it yields."""
        parts = self._run_job(rdd, lambda _i, it: list(partitionFunc(it)), partitions, "runJob")
        return [x for p in parts for x in p]

    # ------------------------------------------------------------------ engine internals
    def _new_rdd_id(self) -> int:
        return next(self._ids)

    def _new_shuffle_id(self, rdd: Any) -> int:
        sid = next(self._shuffle_ids)
        self._shuffles[sid] = rdd
        return sid

    def _forget_map_output(self, shuffle_id: int, map_id: int,
                           location: str | None = None) -> None:
        rdd = self._shuffles.get(shuffle_id)
        if rdd is not None:
            rdd._forget_map_output(map_id)
        if location is not None:  # the place is gone: so is every map output it held
            for shuffled in list(self._shuffles.values()):
                shuffled._forget_map_outputs_at(location)

    def _serializer(self) -> Any:
        from ember.serializers import get_serializer

        return get_serializer(self._conf.get("ember.serializer") or "pickle")

    def _serializer_or_none(self) -> Any:
        return None if self._executor.in_process else self._serializer()

    def _pickle_data(self, data: list) -> bytes:
        return pickle.dumps(data, pickle.HIGHEST_PROTOCOL)

    def _block_dirs(self) -> tuple[str | None, str | None]:
        """Where serialized and disk-level cached blocks go: ``None`` keeps them in the
        memory of the worker that computed them (workers on other machines)."""
        if not self._executor.shares_driver_files:
            return None, None
        return self._memory_dir, self._disk_dir

    def _drop_blocks(self, prefix: str) -> None:
        for path in self._blocks.remove_prefix(prefix):
            try:
                os.unlink(path)
            except OSError:
                pass
        if self._executor.in_process:
            worker.evict_blocks(prefix)
        else:
            for slot in range(self._executor.num_slots):
                self._executor.submit(worker.evict_blocks, prefix, slot=slot)

    def _run_job(self, rdd: RDD, func: Callable[[int, Iterator[Any]], Any],
                 partitions: list[int] | None, action: str) -> list[Any]:
        self._check_running()
        if rdd.ctx is not self:
            raise ValueError(f"{rdd!r} belongs to another Context")
        return self._scheduler.run_job(rdd, func, partitions, action)

    def _after_job(self, rdd: RDD) -> None:
        """Save the RDDs under ``rdd`` that asked to be checkpointed."""
        marked: list[RDD] = []
        seen: set[int] = set()
        stack = [rdd]
        while stack:
            r = stack.pop()
            if id(r) in seen:
                continue
            seen.add(id(r))
            if r._checkpoint_requested and r._checkpoint_splits is None:
                marked.append(r)
            if r._checkpoint_splits is None:
                stack.extend(r._narrow_parents())
                prev = getattr(r, "_prev", None)
                if prev is not None:
                    stack.append(prev)
        for r in marked:
            self._checkpoint_rdd(r)

    def _checkpoint_rdd(self, rdd: RDD) -> None:
        assert self._checkpoint_dir is not None
        target = os.path.join(self._checkpoint_dir, f"rdd-{rdd.id}")
        os.makedirs(target, exist_ok=True)
        ser = self._serializer()

        def save(i: int, it: Iterator[Any]) -> str:
            return write_checkpoint_part(it, os.path.join(target, f"part-{i:05d}"), ser)

        # Not "requested" while its own saving job runs: that job's _after_job would
        # otherwise checkpoint the same RDD again, recursively.
        rdd._checkpoint_requested = False
        try:
            paths = self._scheduler.run_job(rdd, save, None, "checkpoint")
        except BaseException:
            rdd._checkpoint_requested = True
            raise
        rdd._checkpoint_splits = [CheckpointSplit(i, p) for i, p in enumerate(paths)]
        rdd._truncate_lineage()

    def _checkpoint_file_rdd(self, paths: list[str], partitioner: Any) -> RDD:
        """An RDD reading partitions saved by a checkpoint (used by streaming recovery)."""
        from ember._engine.rdds import ParallelCollectionRDD

        rdd = ParallelCollectionRDD(self, [], 1)
        rdd._split_list = []
        rdd._checkpoint_splits = [CheckpointSplit(i, p) for i, p in enumerate(paths)]
        rdd.partitioner = partitioner
        return rdd

    def _save_partitions(self, rdd: RDD, path: str, kind: str, compress: bool,
                         replace: bool = False) -> None:
        from ember._engine.inputs import commit_output, staging_dir, write_frames, write_text_part

        target = os.path.abspath(os.path.expanduser(path))
        if os.path.exists(target) and not replace:
            raise FileExistsError(
                f"output directory {target} already exists; choose a new path or delete it"
            )
        tmp = staging_dir(target)
        ser = self._serializer() if kind == "pickle" else None

        def write(i: int, it: Iterator[Any]) -> str:
            name = os.path.join(tmp, f"part-{i:05d}")
            if kind == "text":
                return write_text_part(it, name + (".gz" if compress else ""), compress)
            from ember._engine.inputs import batched

            write_frames(name, (ser.dumps_batch(b) for b in batched(it, 1024)))
            return name

        try:
            self._run_job(rdd, write, None, f"saveAs{kind.title()}File")
            commit_output(tmp, target, replace=replace)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def __reduce__(self):
        raise TypeError(
            "an ember Context cannot be pickled: it was captured by a function sent to the "
            "workers or saved in a streaming checkpoint. Use it only on the driver (in "
            "transform/foreachRDD bodies, not in functions given to map, filter, ...), and "
            "reach it through rdd.context inside transform functions"
        )

    def __repr__(self) -> str:
        return f"<ember.Context master={self.master!r} appName={self.appName!r}>"


def _remove_trees(*paths: str) -> None:
    for path in paths:
        if path:
            shutil.rmtree(path, ignore_errors=True)


def _remove_stale_dirs(parent: str, prefix: str) -> None:
    """Remove the directories ``PREFIX + PID-*`` in ``parent`` that contexts of processes
    no longer alive left behind: a killed driver cannot clean up (and files in ``/dev/shm``
    hold RAM until removed). Directories of live processes, of other users, or without a pid
    in their name are left alone."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    uid = os.getuid()
    pattern = re.compile(re.escape(prefix) + r"([0-9]+)-.+")
    for name in names:
        m = pattern.fullmatch(name)
        if m is None:
            continue
        path = os.path.join(parent, name)
        try:
            if os.stat(path).st_uid != uid:
                continue
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # gone meanwhile, or a live process we may not signal
            continue
