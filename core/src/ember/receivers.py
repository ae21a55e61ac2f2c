"""Receivers: how data pushed from outside gets into a stream.

Subclass :class:`Receiver` to read from any system (the custom receivers PySpark never had),
and give it to ``ssc.receiverStream(receiver)``; or register a :class:`ReceiverSource` plugin
in the entry-point group ``ember.sources``.

The life of a receiver, driven by its supervisor on the driver:

1. ``onStart()`` is called; it must return quickly, after starting its own thread(s) that
   read data and call ``store``/``storeMany``/``storeBytes``.
2. The receiving thread loops ``while not self.isStopped()``. On a recoverable problem it
   calls ``restart(message, error)``: the supervisor calls ``onStop()``, waits, and calls
   ``onStart()`` again. On a fatal one it calls ``stop(message, error)``.
3. When the streaming context stops, ``onStop()`` is called; it must release everything
   ``onStart`` made (close sockets, join threads) so nothing is left running.

Data stored with ``store(record)`` is grouped into blocks every
``ember.streaming.blockInterval`` (default 200 ms); each block becomes one partition of the
batch it falls in. ``storeMany(records)`` makes a block of its records and returns only when
that block is stored (and written to the write-ahead log when it is on), so a *reliable*
receiver can acknowledge its source for exactly the data that is safe; its ``metadata``
(the source position after the records) comes back from ``lastStoredMetadata()``. ``storeBytes(data)``
stores raw UTF-8 text of whole lines: the cheapest path, since splitting into lines and
decoding happen in the workers, in parallel.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from ember.sources import Delivery, Source
from ember.storagelevel import StorageLevel

if TYPE_CHECKING:
    from ember.conf import Conf
    from ember.streaming._receiving import ReceiverSupervisor
    from ember.streaming.context import StreamingContext
    from ember.streaming.dstream import DStream

__all__ = ["Receiver", "ReceiverSource"]


class Receiver:
    """Base class of receivers: override :meth:`onStart` and :meth:`onStop`.

    :param storageLevel: where received blocks wait for their batch (default
        ``MEMORY_AND_DISK_SER_2``, as in Spark). Blocks are always kept serialized; a level
        that uses disk lets blocks beyond ``ember.streaming.receiver.spillThreshold`` go to
        local files, ``DISK_ONLY`` sends every block there, and a memory-only level makes
        ``store`` wait once ``ember.streaming.receiver.maxMemory`` is held (see
        ``docs/receivers.md``). The replication factor has no meaning on one driver and is
        ignored.

    A subclass that defines ``__init__`` should call ``super().__init__()``; one that forgets
    still works (with the default storage level).

    A minimal receiver::

        class CounterReceiver(Receiver):
            def onStart(self):
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()

            def _run(self):
                n = 0
                while not self.isStopped():
                    self.store(n)
                    n += 1

            def onStop(self):
                self._thread.join(timeout=5)  # not guaranteed to be called after a crash
    """

    #: The ember plugin API version this receiver was built for.
    api_version: ClassVar[str] = "1.0"
    #: The guarantee this receiver gives: ``AT_MOST_ONCE`` for one that stores what it reads
    #: and moves on; ``AT_LEAST_ONCE`` for a *reliable* receiver, which acknowledges its
    #: source only after ``storeMany`` returned (the source resends what was not acknowledged).
    delivery: ClassVar[Delivery] = Delivery.AT_MOST_ONCE

    # Class-level defaults, so that a subclass whose __init__ forgets super().__init__() works.
    storageLevel: StorageLevel = StorageLevel.MEMORY_AND_DISK_SER_2
    _supervisor: ReceiverSupervisor | None = None
    _stream_id: int | None = None

    def __init__(self, storageLevel: StorageLevel = StorageLevel.MEMORY_AND_DISK_SER_2) -> None:
        self.storageLevel = storageLevel
        self._supervisor = None
        self._stream_id = None

    def __getstate__(self) -> dict[str, Any]:
        """A receiver is saved in checkpoints as its configuration: the supervisor and
        runtime objects (threads, sockets, locks, files, queues) are left out; a receiver
        loaded from a checkpoint gets new locks, events, conditions and queues (unlocked,
        cleared, empty) in their place, and ``None`` for threads, sockets and files."""
        state: dict[str, Any] = {}
        fresh: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            kind = _runtime_kind(value)
            if kind is None:
                state[name] = value
            else:
                fresh[name] = kind
        state["_supervisor"] = None
        state["_ember_runtime"] = fresh
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        fresh = state.pop("_ember_runtime", {})
        self.__dict__.update(state)
        for name, kind in fresh.items():
            setattr(self, name, _new_runtime(kind))

    # ------------------------------------------------------------------ to override
    @abstractmethod
    def onStart(self) -> None:
        """Start receiving: start a thread that reads data and stores it; return quickly."""

    @abstractmethod
    def onStop(self) -> None:
        """Stop receiving: release what :meth:`onStart` made. Called on stop and restart.

        ``onStop`` may itself store what the receiver still holds (records it buffered to
        store them as one block, say): stores made by the thread running ``onStop`` are
        accepted even during the final stop, and a graceful stop processes them. Stores
        from any other thread are refused once the final stop has begun.
        """

    def name(self) -> str:
        """A name for listeners and the UI (the class name by default)."""
        return type(self).__name__

    # ------------------------------------------------------------------ storing data
    def _sup(self) -> ReceiverSupervisor:
        sup = self._supervisor
        if sup is None:
            raise RuntimeError(
                f"{self.name()} is not attached to a running stream: give it to "
                f"ssc.receiverStream(receiver) and start the StreamingContext first"
            )
        return sup

    def store(self, item: Any) -> None:
        """Store one record; it joins the block being filled (returns at once)."""
        self._sup().push_single(item)

    def storeMany(self, items: Iterable[Any], metadata: Any = None) -> None:
        """Store records as one block; returns once the block is stored (and logged).

        :param metadata: optional, JSON-compatible: where the source is after these
            records (an offset, a sequence number). It is kept with the block — in the
            write-ahead log when that is on — and :meth:`lastStoredMetadata` gives it back,
            also after a driver restart, so a reliable receiver can resume its source
            exactly after the last records it stored.
        """
        self._sup().push_many(list(items), metadata)

    def lastStoredMetadata(self) -> Any:
        """The ``metadata`` of the last block stored with some by :meth:`storeMany`, or
        ``None``.

        It survives receiver restarts; with the write-ahead log on it also survives a
        driver failure (it is read back from the log on recovery), so a reliable receiver's
        ``onStart`` can ask its source to resume right after it — nothing lost, nothing
        twice. Without the write-ahead log a recovered driver starts with ``None``.
        """
        return self._sup().last_stored_metadata()

    def storeBytes(self, data: bytes) -> None:
        """Store UTF-8 text made of whole lines (``\\n``-terminated, the last may be open;
        a ``\\r\\n`` line end counts as ``\\n``: the ``\\r`` is not part of the line).

        The lines become records in the workers. Cut the data at a line break: a line split
        across two calls would become two records.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"storeBytes expects bytes, got {type(data).__name__}")
        self._sup().push_bytes(bytes(data))

    # ------------------------------------------------------------------ control
    def restart(self, message: str, error: BaseException | None = None,
                delay: float | None = None) -> None:
        """Restart the receiver after ``delay`` seconds (``ember.streaming.receiverRestartDelay``
        by default): ``onStop``, wait, ``onStart``. Returns at once; the restart runs in
        another thread."""
        self._sup().restart(message, error, delay)

    def stop(self, message: str, error: BaseException | None = None) -> None:
        """Stop the receiver for good (the rest of the stream keeps running)."""
        self._sup().stop_receiver(message, error)

    def reportError(self, message: str, error: BaseException | None = None) -> None:
        """Report an error to listeners and the log without stopping."""
        self._sup().report_error(message, error)

    def isStarted(self) -> bool:
        """Whether the receiver has been started (and not stopped)."""
        sup = self._supervisor
        return sup is not None and sup.is_started()

    def isStopped(self) -> bool:
        """Whether the receiver is stopped: a receiving loop should end when this is true."""
        sup = self._supervisor
        return sup is None or sup.is_stopped()

    @property
    def conf(self) -> Conf:
        """A copy of the configuration of the application this receiver runs in (to read
        ``ember.streaming.blockInterval`` or ``ember.streaming.receiverRestartDelay``, say).

        :raises RuntimeError: the receiver is not attached to a running stream.
        """
        return self._sup().ssc.sparkContext.getConf()

    @property
    def streamId(self) -> int | None:
        """The id of the input stream this receiver feeds."""
        return self._stream_id


def _runtime_kind(value: Any) -> Any:
    """How to remake ``value`` after a checkpoint, or ``None`` if it is configuration."""
    import io
    import queue
    import socket
    import threading

    if isinstance(value, type(threading.Lock())):
        return "lock"
    if isinstance(value, type(threading.RLock())):
        return "rlock"
    if isinstance(value, threading.Event):
        return "event"
    if isinstance(value, threading.Condition):
        return "condition"
    if isinstance(value, queue.Queue):
        return ("queue", type(value), value.maxsize)
    if isinstance(value, (threading.Thread, socket.socket, io.IOBase)):
        return "none"
    return None


def _new_runtime(kind: Any) -> Any:
    """A new runtime object of ``kind`` (see :func:`_runtime_kind`)."""
    import threading

    if isinstance(kind, tuple):
        _, cls, maxsize = kind
        return cls(maxsize)
    return {"lock": threading.Lock, "rlock": threading.RLock, "event": threading.Event,
            "condition": threading.Condition}.get(kind, lambda: None)()


class ReceiverSource(Source):
    """A source plugin whose stream is fed by a :class:`Receiver`."""

    @abstractmethod
    def createReceiver(self) -> Receiver:
        """A new receiver for this source (called once per stream)."""

    def createStream(self, ssc: StreamingContext) -> DStream:
        return ssc.receiverStream(self.createReceiver())
