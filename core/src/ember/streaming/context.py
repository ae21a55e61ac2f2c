"""``StreamingContext``: the entry point of ember's streaming (PySpark's ``StreamingContext``)."""

from __future__ import annotations

import atexit
import enum
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ember._clock import Clock, ManualClock, SystemClock
from ember.conf import Conf
from ember.context import Context
from ember.errors import ContextError
from ember.rdd import RDD
from ember.streaming._graph import DStreamGraph
from ember.streaming.dstream import DStream, duration_ms

__all__ = ["StreamingContext", "StreamingContextState"]

log = logging.getLogger("ember.streaming")

_active_lock = threading.RLock()
_active: StreamingContext | None = None
_exit_hook_registered = False


def _stop_on_exit() -> None:
    """Stop the active StreamingContext when the interpreter exits (Spark's shutdown hook).

    Runs before the job threads are joined, so a program that ends, or is interrupted, without
    calling ``stop()`` exits at once instead of first running every queued batch. Gracefully
    when ``ember.streaming.stopGracefullyOnShutdown`` is true (default false, as in Spark).
    """
    ssc = _active
    if ssc is None:
        return
    graceful = bool(ssc._sc._conf.getBoolean("ember.streaming.stopGracefullyOnShutdown", False))
    log.info("the interpreter is exiting: stop(stopGraceFully=%s) of the active "
             "StreamingContext", graceful)
    try:
        ssc.stop(stopSparkContext=False, stopGraceFully=graceful)
    except Exception:
        log.exception("stopping the StreamingContext at exit failed")


def _register_exit_hook() -> None:
    """Register :func:`_stop_on_exit` once, after the job threads' own exit hook.

    ``threading._register_atexit`` hooks run before non-daemon and executor threads are
    joined, latest first; ``atexit`` ones only after that join, too late to skip queued batches.
    """
    global _exit_hook_registered
    if _exit_hook_registered:
        return
    import concurrent.futures.thread  # noqa: F401  (its exit hook first, so ours runs before it)

    register = getattr(threading, "_register_atexit", None)
    try:
        (register or atexit.register)(_stop_on_exit)
    except RuntimeError:  # the interpreter is already shutting down
        return
    _exit_hook_registered = True


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM as an interpreter exit, so that :func:`_stop_on_exit` stops gracefully."""
    log.info("SIGTERM: exiting; the active StreamingContext stops gracefully first")
    raise SystemExit(128 + signum)


def _handle_sigterm(conf: Conf) -> None:
    """With ``ember.streaming.stopGracefullyOnShutdown``, make SIGTERM (``kill``, a container
    stop) end the program through a normal exit, as Spark's shutdown hook sees it.

    Only from the main thread, and only while SIGTERM has its default action: a handler the
    program installed itself is left alone.
    """
    if not conf.getBoolean("ember.streaming.stopGracefullyOnShutdown", False):
        return
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _release_sigterm() -> None:
    """Give SIGTERM its default action back once no StreamingContext is active."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is _exit_on_sigterm):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class StreamingContextState(str, enum.Enum):
    """The lifecycle of a StreamingContext: it goes forward only."""

    INITIALIZED = "INITIALIZED"
    ACTIVE = "ACTIVE"
    STOPPED = "STOPPED"


class StreamingContext:
    """The main entry point of streaming: makes input DStreams and runs their batches.

    :param sparkContext: the :class:`ember.Context` to run on, or a master URL string
        (``"local[2]"``) to build one.
    :param batchDuration: seconds between batches (a float; sub-second batches are allowed).
    :param appName: with a master string, the application name.
    :param conf: with a master string, the :class:`ember.Conf` of the new Context.
    :param clock: the clock batches follow; default from ``ember.streaming.clock``
        (``"system"``, or ``"manual"`` for tests, see :class:`ember.testing.ManualClock`).

    The guide's rules hold: once started, no new streams or output operations can be added;
    once stopped, a context cannot be restarted; only one StreamingContext is active in a
    process; ``stop(stopSparkContext=False)`` leaves the Context usable for a new
    StreamingContext.
    """

    def __init__(self, sparkContext: Context | str | None = None,
                 batchDuration: float | None = None, *, appName: str | None = None,
                 conf: Conf | None = None, clock: Clock | None = None) -> None:
        if batchDuration is None:
            raise ValueError("batchDuration is required: the seconds between batches, e.g. 1")
        self._batch_ms = duration_ms(batchDuration, "batchDuration")
        if isinstance(sparkContext, Context):
            self._sc = sparkContext
        elif sparkContext is None or isinstance(sparkContext, str):
            self._sc = Context.getOrCreate(conf) if sparkContext is None and appName is None \
                else Context(sparkContext, appName, conf)
        else:
            raise TypeError(
                f"StreamingContext expects an ember.Context or a master string, got "
                f"{type(sparkContext).__name__}"
            )
        self._sc._check_running()
        self._setup(clock)

    def _setup(self, clock: Clock | None, start_ms: int = 0) -> None:
        if clock is None:
            kind = (self._sc._conf.get("ember.streaming.clock") or "system").lower()
            if kind not in ("system", "manual"):
                raise ValueError(
                    f"ember.streaming.clock must be 'system' or 'manual', got {kind!r}"
                )
            clock = ManualClock(start_ms / 1000.0) if kind == "manual" else SystemClock()
        self._clock = clock
        self._fingerprint: str | None = None
        self._restored: Any = None
        self._graph = DStreamGraph(self._batch_ms)
        self._state = StreamingContextState.INITIALIZED
        self._checkpoint_dir: str | None = None
        self._scheduler: Any = None
        self._listeners: list[Any] = []
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._stopped_event = threading.Event()

    # ------------------------------------------------------------------ properties
    @property
    def sparkContext(self) -> Context:
        """The :class:`ember.Context` batches run on."""
        return self._sc

    @property
    def clock(self) -> Clock:
        """The clock batches follow (a :class:`ember.testing.ManualClock` in tests)."""
        return self._clock

    @property
    def batchDuration(self) -> float:
        """Seconds between batches."""
        return self._batch_ms / 1000.0

    def getState(self) -> StreamingContextState:
        """``INITIALIZED``, ``ACTIVE`` or ``STOPPED``."""
        return self._state

    @classmethod
    def getActive(cls) -> StreamingContext | None:
        """The active (started, not stopped) StreamingContext of this process, if any."""
        return _active

    @classmethod
    def getActiveOrCreate(cls, checkpointPath: str | None,
                          setupFunc: Callable[[], StreamingContext]) -> StreamingContext:
        """The active StreamingContext, or a new one from ``setupFunc`` (or the checkpoint)."""
        active = cls.getActive()
        if active is not None:
            return active
        if checkpointPath is not None:
            return cls.getOrCreate(checkpointPath, setupFunc)
        ssc = setupFunc()
        if not isinstance(ssc, StreamingContext):
            raise TypeError(f"setupFunc must return a StreamingContext, got {ssc!r:.80}")
        return ssc

    @classmethod
    def getOrCreate(cls, checkpointPath: str,
                    setupFunc: Callable[[], StreamingContext] | None) -> StreamingContext:
        """Recover a StreamingContext from ``checkpointPath``, or build it with ``setupFunc``.

        The first time (no checkpoint there), ``setupFunc()`` builds the context and its
        streams; the checkpoint directory is set to ``checkpointPath`` if it did not set one.
        Afterwards, the context is rebuilt from the newest usable checkpoint — its graph,
        state and configuration — and on ``start()`` re-runs the batches that were
        generated but not completed, then those it missed while down.

        ``setupFunc=None`` (as in PySpark) only recovers: there must be a checkpoint, and
        the application code is not compared with the one that wrote it.

        :raises ember.streaming.CheckpointError: when the checkpoint was written by other
            application code or another ember/Python/cloudpickle version (the message says
            to use a new directory or delete this one).
        :raises ValueError: ``setupFunc`` is ``None`` and there is no checkpoint.
        """
        import os

        from ember.streaming._checkpoint import code_fingerprint, load_graph, read_checkpoint
        from ember.streaming._dstreams import PullInputDStream

        if setupFunc is not None and not callable(setupFunc):
            raise TypeError(f"setupFunc must be a function returning a StreamingContext, "
                            f"got {setupFunc!r}")
        path = os.path.abspath(os.path.expanduser(checkpointPath))
        fingerprint = None if setupFunc is None else code_fingerprint(setupFunc)
        cp = read_checkpoint(path, fingerprint) if os.path.isdir(path) else None
        if cp is None:
            if setupFunc is None:
                raise ValueError(
                    f"no checkpoint in {path} to recover from, and no setupFunc to create "
                    f"a StreamingContext: pass the function that builds it"
                )
            ssc = setupFunc()
            if not isinstance(ssc, StreamingContext):
                raise TypeError(f"setupFunc must return a StreamingContext, got {ssc!r:.80}")
            if ssc._checkpoint_dir is None:
                ssc.checkpoint(path)
            ssc._fingerprint = fingerprint
            return ssc
        sc = Context.getOrCreate(Conf(pairs=cp.conf))
        ssc = cls.__new__(cls)
        ssc._batch_ms = cp.batch_ms
        ssc._sc = sc
        ssc._setup(None, start_ms=cp.time_ms)
        ssc._graph = load_graph(cp.graph_blob, sc)
        for stream in ssc._graph.streams():
            stream._rebind(ssc)
        for stream in ssc._graph.inputs:
            state = cp.source_states.get(stream.id)
            if isinstance(stream, PullInputDStream) and state is not None:
                stream.source.restore(state)
        ssc.checkpoint(path)
        ssc._fingerprint = cp.fingerprint if fingerprint is None else fingerprint
        ssc._restored = cp
        log.info("StreamingContext recovered from %s (batch %d ms)", path, cp.time_ms)
        return ssc

    def _check_can_add(self, what: str) -> None:
        if self._state is StreamingContextState.ACTIVE:
            raise ContextError(
                f"cannot {what} after the StreamingContext started: adding new inputs, "
                f"transformations and output operations after start() is not supported; "
                f"define the whole computation before ssc.start()"
            )
        if self._state is StreamingContextState.STOPPED:
            raise ContextError(
                f"cannot {what}: this StreamingContext has been stopped; create a new one"
            )

    # ------------------------------------------------------------------ configuration
    def remember(self, duration: float) -> None:
        """Keep each stream's RDDs for at least ``duration`` seconds (for ``slice`` and the like)."""
        self._check_can_add("change remember")
        self._graph.remember_ms = duration_ms(duration, "remember duration")

    def checkpoint(self, directory: str) -> None:
        """Set the directory checkpoints are written to."""
        import os

        if not directory:
            raise ValueError("checkpoint directory must be a non-empty path")
        path = os.path.abspath(os.path.expanduser(directory))
        os.makedirs(path, exist_ok=True)
        self._checkpoint_dir = path
        self._sc.setCheckpointDir(os.path.join(path, "rdds"))

    # ------------------------------------------------------------------ making streams
    def stream(self, source: str, **options: Any) -> DStream:
        """An input DStream from the installed source plugin named ``source``.

        ``options`` go to the source's constructor (see its documentation).

        :raises ember.errors.PluginNotFoundError: naming the distribution to install.
        """
        from ember.plugins import load_component
        from ember.sources import Source

        self._check_can_add("create a new input stream")
        cls = load_component("sources", source)
        src = cls(**options)
        if not isinstance(src, Source):
            raise TypeError(f"source plugin {source!r} built {src!r}, which is not an ember Source")
        return src.createStream(self)

    def queueStream(self, rdds: Iterable[Any], oneAtATime: bool = True,
                    default: Any = None) -> DStream:
        """A stream of the given RDDs (or lists), one per batch (all in one batch if not
        ``oneAtATime``); ``default`` (or an empty RDD) once the queue is empty."""
        return self.stream("queue", rdds=rdds, oneAtATime=oneAtATime, default=default)

    def receiverStream(self, receiver: Any) -> DStream:
        """An input DStream fed by ``receiver`` (an :class:`ember.receivers.Receiver`)."""
        from ember.streaming._dstreams import ReceiverInputDStream

        self._check_can_add("create a new input stream")
        return ReceiverInputDStream(self, receiver)

    def socketTextStream(self, hostname: str, port: int,
                         storageLevel: Any = None, **options: Any) -> DStream:
        """Lines of UTF-8 text read from a TCP server (needs the ``ember-socket`` plugin).

        ``options`` go to the socket source (decoding policy, line length limit...).
        """
        if storageLevel is not None:
            options["storageLevel"] = storageLevel
        return self.stream("socket", hostname=hostname, port=port, **options)

    def socketStream(self, hostname: str, port: int, converter: Callable[[Any], Iterable[Any]],
                     storageLevel: Any = None, **options: Any) -> DStream:
        """Records made by ``converter(binary_file)`` from a TCP server's bytes (``ember-socket``)."""
        if storageLevel is not None:
            options["storageLevel"] = storageLevel
        return self.stream("socket", hostname=hostname, port=port, converter=converter,
                           **options)

    def textFileStream(self, directory: str) -> DStream:
        """Lines of the text files that appear in ``directory`` (needs ``ember-file``)."""
        return self.stream("file", directory=directory)

    def binaryRecordsStream(self, directory: str, recordLength: int) -> DStream:
        """Fixed-length byte records of the files that appear in ``directory`` (``ember-file``)."""
        return self.stream("file", directory=directory, recordLength=recordLength)

    def fileStream(self, directory: str, filter: Callable[[str], bool] | None = None,
                   newFilesOnly: bool = True) -> DStream:
        """Lines of the files accepted by ``filter(path)`` that appear in ``directory``."""
        return self.stream("file", directory=directory, filter=filter,
                           newFilesOnly=newFilesOnly)

    def union(self, *dstreams: DStream) -> DStream:
        """One stream of the elements of all ``dstreams`` (same slide duration required)."""
        from ember.streaming._dstreams import TransformedDStream

        if not dstreams:
            raise ValueError("union needs at least one DStream")
        for d in dstreams:
            if not isinstance(d, DStream):
                raise TypeError(f"union expects DStreams, got {type(d).__name__}")
        slides = {d._slide_ms for d in dstreams}
        if len(slides) > 1:
            raise ValueError(
                f"all DStreams given to union must have the same slide duration, got "
                f"{sorted(s / 1000 for s in slides)} s"
            )
        return TransformedDStream(list(dstreams), lambda _t, rdds: rdds[0].ctx.union(rdds),
                                  "union")

    def transform(self, dstreams: list[DStream],
                  transformFunc: Callable[[list[RDD]], RDD]) -> DStream:
        """A stream of ``transformFunc(rdds)``, ``rdds`` being the streams' RDDs in order."""
        from ember.streaming._dstreams import TransformedDStream

        if not callable(transformFunc):
            raise TypeError(f"transform expects a function, got {transformFunc!r}")
        dstreams = list(dstreams)
        if not dstreams:
            raise ValueError("transform needs at least one DStream")
        return TransformedDStream(dstreams, lambda _t, rdds: transformFunc(list(rdds)),
                                  "transform")

    # ------------------------------------------------------------------ listeners
    def addStreamingListener(self, streamingListener: Any) -> None:
        """Call ``streamingListener``'s ``on...`` methods on streaming events."""
        from ember.streaming.listener import StreamingListener, _ListenerAdapter

        if not isinstance(streamingListener, StreamingListener):
            raise TypeError(
                f"addStreamingListener expects a StreamingListener subclass instance, got "
                f"{type(streamingListener).__name__}"
            )
        adapter = _ListenerAdapter(streamingListener)
        self._listeners.append(adapter)
        self._sc._hooks.register(adapter)

    def removeStreamingListener(self, streamingListener: Any) -> None:
        """Stop calling a listener added with :meth:`addStreamingListener`."""
        for adapter in list(self._listeners):
            if adapter.listener is streamingListener:
                self._listeners.remove(adapter)
                self._sc._hooks.unregister(adapter)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start generating and processing batches."""
        global _active
        from ember.streaming._scheduler import JobScheduler

        if self._state is StreamingContextState.ACTIVE:
            raise ContextError("this StreamingContext has already been started")
        if self._state is StreamingContextState.STOPPED:
            raise ContextError(
                "this StreamingContext has been stopped and cannot be restarted; create a new one"
            )
        if not self._graph.outputs:
            raise ContextError(
                "no output operations registered, so nothing to execute: call pprint(), "
                "foreachRDD() or saveAs...Files() on a DStream before start()"
            )
        self._sc._check_running()
        with _active_lock:
            if _active is not None:
                raise ContextError(
                    "only one StreamingContext may be active in a process; stop the active "
                    "one (StreamingContext.getActive().stop(stopSparkContext=False)) first"
                )
            _register_exit_hook()
            _handle_sigterm(self._sc._conf)
            self._scheduler = JobScheduler(self)
            self._scheduler.start(self._restored)
            self._state = StreamingContextState.ACTIVE
            _active = self
        log.info("StreamingContext started: batches every %s s from %d ms",
                 self.batchDuration, self._scheduler.start_ms)
        self._sc._hooks.streaming_started(self)

    @property
    def startTime(self) -> int | None:
        """The time of the first batch (ms), once started."""
        return None if self._scheduler is None else self._scheduler.start_ms

    def stop(self, stopSparkContext: bool = True, stopGraceFully: bool = False) -> None:
        """Stop the streams; with ``stopGraceFully`` finish every queued batch first.

        :param stopSparkContext: also stop the :class:`ember.Context` (default).
        :param stopGraceFully: process all data already received before stopping.

        Called from inside an output operation (a ``foreachRDD`` function), ``stop`` returns
        at once: the stream finishes stopping in the background once that function has
        returned, so its batch still completes and reaches the listeners;
        :meth:`awaitTermination` returns when it is done.
        """
        global _active
        with self._cond:
            if self._state is StreamingContextState.STOPPED:
                if stopSparkContext:
                    self._sc.stop()
                return
            was_active = self._state is StreamingContextState.ACTIVE
            if was_active and not stopGraceFully:  # before anyone can see STOPPED
                self._scheduler.drop_queued()
            self._state = StreamingContextState.STOPPED
        in_job = was_active and self._scheduler.in_job()
        try:
            if was_active:
                self._scheduler.stop(graceful=stopGraceFully)
        except BaseException:
            self._finish_stop(was_active, stopSparkContext, stopGraceFully)
            raise
        if in_job:
            # A foreachRDD function stopping the stream: its own job cannot be waited for
            # here, so the rest happens once it (and, if graceful, every queued batch) has
            # returned, and its batch has completed and reached the listeners.
            def finish() -> None:
                self._scheduler.wait_for_jobs()
                self._finish_stop(was_active, stopSparkContext, stopGraceFully)

            threading.Thread(target=finish, name="ember-streaming-stop", daemon=True).start()
            return
        self._finish_stop(was_active, stopSparkContext, stopGraceFully)

    def _finish_stop(self, was_active: bool, stopSparkContext: bool,
                     stopGraceFully: bool) -> None:
        """The end of :meth:`stop`, once no job runs: listeners, hooks, the Context."""
        global _active
        with _active_lock:
            if _active is self:
                _active = None
                _release_sigterm()
        for adapter in self._listeners:
            try:
                self._sc._hooks.unregister(adapter)
            except ValueError:
                pass
        if was_active:
            self._sc._hooks.streaming_stopped(self)
        if stopSparkContext:
            self._sc.stop()
        with self._cond:
            self._stopped_event.set()
            self._cond.notify_all()
        log.info("StreamingContext stopped%s", " gracefully" if stopGraceFully else "")

    def _report_error(self, error: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = error
            self._cond.notify_all()

    def _raise_error(self) -> None:
        error = self._error
        if error is not None:
            raise error

    def awaitTermination(self, timeout: float | None = None) -> None:
        """Wait until the context is stopped or a batch fails (then raise that error).

        :param timeout: seconds to wait at most; ``None`` waits for ever.
        """
        self.awaitTerminationOrTimeout(timeout)

    def awaitTerminationOrTimeout(self, timeout: float | None) -> bool:
        """Like :meth:`awaitTermination`; ``True`` if it stopped, ``False`` on timeout.

        An error raised by a batch's job is re-raised here: the user's own exception type
        and message, its traceback included (a task's remote traceback is its ``__cause__``).
        """
        if self._state is StreamingContextState.INITIALIZED:
            raise ContextError("awaitTermination needs a started StreamingContext")
        with self._cond:
            self._cond.wait_for(lambda: self._error is not None or self._stopped_event.is_set(),
                                timeout)
        self._raise_error()
        return self._stopped_event.is_set()

    # ------------------------------------------------------------------ test support
    def _await_batch(self, time_ms: int, timeout: float | None = 30.0) -> None:
        """Block until batch ``time_ms`` completed (used by ``ember.testing``)."""
        if self._scheduler is None:
            raise ContextError("the StreamingContext has not been started")
        if not self._scheduler.wait_for_batch(time_ms, timeout):
            raise TimeoutError(
                f"batch {time_ms} ms did not complete within {timeout} s (last completed: "
                f"{self._scheduler.last_completed_ms} ms)"
            )

    def __repr__(self) -> str:
        return f"<ember.streaming.StreamingContext {self._state.value} batch={self.batchDuration}s>"
