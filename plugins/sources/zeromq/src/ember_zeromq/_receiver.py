"""The ZeroMQ receiver: one thread per start, owning a ZeroMQ context and its sockets.

The thread builds a context of its own, a ``SUB`` socket subscribed to the source's prefixes
and connected to the publisher, and a monitor socket that tells it when the connection to the
publisher is made, lost, or cannot be made. It polls both, at most 50 ms at a time (so a stop
is noticed at once), reads every message waiting (``recv_multipart``), and keeps the frame
lists in a buffer that it stores as one block every ``ember.streaming.blockInterval``
(``storeMany``): no per-message work beyond the read. ``bytesToObjects`` runs in the workers.

ZeroMQ would reconnect a ``SUB`` socket by itself, silently; this receiver turns that off
(``RECONNECT_IVL`` -1) and makes failures visible instead, as every ember receiver does: a
connection that cannot be made or is lost ends the start — what was read is stored, the
failure is reported to listeners, and the receiver restarts after a backoff that doubles with
each failure in a row (reset once a message arrives). A reconnection ZeroMQ made on its own
could receive messages on a socket about to be closed; one made by a restart cannot. On stop the
thread closes its sockets with linger 0 and terminates its context (ZeroMQ's I/O threads end
with it); ``onStop`` joins the thread and stores what it still held as a last block.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import zmq
from ember.receivers import Receiver
from ember.storagelevel import StorageLevel
from zmq.utils.monitor import recv_monitor_message

if TYPE_CHECKING:
    from ember_zeromq._source import ZeroMQSource

__all__ = ["ZeroMQReceiver"]

#: The longest a poll waits, in seconds (bounds how long a stop takes to be noticed).
_POLL_S = 0.05
#: Messages read in one go before the thread looks at the clock and the monitor again.
_DRAIN = 10_000
_EVENTS = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED


class _Session:
    """The runtime state of one start of a receiver."""

    def __init__(self, receiver: ZeroMQReceiver, block_interval: float) -> None:
        self.receiver = receiver
        self.source = receiver.source
        self.block_interval = block_interval
        self.halt = threading.Event()
        self.buffer: list[list[bytes]] = []
        self.thread: threading.Thread | None = None
        self.connected = False

    def run(self) -> None:
        ctx = zmq.Context(io_threads=1)
        sock = ctx.socket(zmq.SUB)
        monitor = None
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RECONNECT_IVL, -1)  # failures restart the receiver instead
            sock.setsockopt(zmq.RCVHWM, self.source.receiveHighWaterMark)
            for prefix in self.source.subscribe:
                sock.setsockopt(zmq.SUBSCRIBE, prefix)
            monitor = sock.get_monitor_socket(_EVENTS)
            sock.connect(self.source.publisherUrl)
            failure = self._loop(sock, monitor)
            if failure is not None and not self.halt.is_set():
                self.flush()
                self.receiver._fail(failure, None)
        except Exception as exc:
            if not self.halt.is_set():
                try:
                    self.flush()
                finally:
                    self.receiver._fail(
                        f"receiving from {self.source.publisherUrl} failed: "
                        f"{type(exc).__name__}: {exc}", exc)
        finally:
            if monitor is not None:
                try:
                    sock.disable_monitor()
                except zmq.ZMQError:
                    pass
                monitor.close(linger=0)
            sock.close(linger=0)
            ctx.term()

    def _loop(self, sock: zmq.Socket, monitor: zmq.Socket) -> str | None:
        """Read until stopped (``None``) or the connection is lost (why)."""
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        recv = sock.recv_multipart
        next_cut = time.monotonic() + self.block_interval
        while not self.halt.is_set():
            wait = min(_POLL_S, max(next_cut - time.monotonic(), 0.0))
            ready = dict(poller.poll(wait * 1000))
            if sock in ready:
                append = self.buffer.append  # flush() replaces the buffer: look it up anew
                for _ in range(_DRAIN):
                    try:
                        append(recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                self.receiver._failures = 0
            if monitor in ready:
                lost = self._monitor_events(monitor)
                if lost is not None:
                    # what arrived before the loss is kept: read it, then restart
                    while True:
                        try:
                            self.buffer.append(recv(zmq.NOBLOCK))
                        except zmq.Again:
                            break
                    return lost
            if time.monotonic() >= next_cut:
                self.flush()
                next_cut = time.monotonic() + self.block_interval
        return None

    def _monitor_events(self, monitor: zmq.Socket) -> str | None:
        url = self.source.publisherUrl
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return None
            kind = event["event"]
            if kind == zmq.EVENT_CONNECTED:
                self.connected = True
            elif kind == zmq.EVENT_DISCONNECTED:
                return f"the connection to the publisher at {url} was lost"
            elif kind == zmq.EVENT_CLOSED and not self.connected:
                return f"could not connect to the publisher at {url}"

    def flush(self) -> None:
        """Store the messages read so far as one block."""
        if self.buffer:
            messages, self.buffer = self.buffer, []
            self.receiver.storeMany(messages)


class ZeroMQReceiver(Receiver):
    """Receives the messages of a ZeroMQ publisher (see :class:`~ember_zeromq.ZeroMQSource`):
    each record it stores is one message's list of frames.

    :param source: the :class:`~ember_zeromq.ZeroMQSource` configuration.
    """

    def __init__(self, source: ZeroMQSource) -> None:
        super().__init__(source.storageLevel or StorageLevel.MEMORY_AND_DISK_SER_2)
        self.source = source
        self._failures = 0
        self._session: _Session | None = None

    def __getstate__(self) -> dict[str, Any]:
        """The configuration only: the running session (sockets, thread, buffer) stays."""
        state = super().__getstate__()
        state["_session"] = None
        return state

    def name(self) -> str:
        """``ZeroMQReceiver(tcp://host:port)``, for listeners and the UI."""
        return f"ZeroMQReceiver({self.source.publisherUrl})"

    @property
    def pending(self) -> int:
        """Messages read and not yet stored (0 when not running)."""
        session = self._session
        return len(session.buffer) if session is not None else 0

    def onStart(self) -> None:
        """Start the receiving thread (it builds the context and sockets; returns at once)."""
        block_interval = self.conf.getDuration("ember.streaming.blockInterval", 0.2) or 0.2
        session = _Session(self, block_interval)
        self._session = session
        session.thread = threading.Thread(
            target=session.run, daemon=True,
            name=f"ember-zeromq-{self.source.publisherUrl}#{self.streamId}")
        session.thread.start()

    def onStop(self) -> None:
        """Stop the thread (it closes its sockets and context), join it, and store what it
        still held as a last block."""
        session, self._session = self._session, None
        if session is None:
            return
        session.halt.set()
        if session.thread is not None and session.thread is not threading.current_thread():
            session.thread.join()
        try:
            session.flush()  # onStop may store the last block, also during the final stop
        except RuntimeError:
            pass

    def _fail(self, message: str, error: BaseException | None) -> None:
        """Report ``message`` and restart after the backoff delay."""
        if self.isStopped():
            return
        self._failures += 1
        default = self.conf.getDuration("ember.streaming.receiverRestartDelay", 2.0)
        delay = self.source.restart_delay(self._failures, 2.0 if default is None else default)
        self.restart(f"{message}; reconnecting in {delay:g} s", error, delay)
