"""The replace_me receiver: one session (a connection and a thread) per start.

The rules it follows (ember.receivers has them all):

- ``onStart`` returns at once: it starts a thread; the thread connects and reads.
- The thread gathers what it reads into a buffer and stores it as one block per
  ``ember.streaming.blockInterval`` with ``storeMany`` — one call per block, never per record.
  ``storeMany`` returns once the block is stored (and written to the write-ahead log when it
  is on): that is the moment a reliable receiver acknowledges its source.
- A failure is reported and ends the start with ``restart(message, error, delay)``; the delay
  grows with failures in a row and resets once data flows.
- ``onStop`` wakes a blocked read (shut the socket down), joins the thread, and stores the
  last, partial block — ``onStop`` may store, also during the final stop.
- Runtime state lives in one ``_session`` attribute that ``__getstate__`` leaves out: a
  running receiver must pickle (metadata checkpoints keep it).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from ember.receivers import Receiver

if TYPE_CHECKING:
    from ember_replace_me._source import ReplaceMeSource

__all__ = ["ReplaceMeReceiver"]


class _Session:
    """What one start of the receiver made: the connection, the thread, the buffer."""

    def __init__(self, receiver: ReplaceMeReceiver, block_interval: float) -> None:
        self.receiver = receiver
        self.source = receiver.source
        self.block_interval = block_interval
        self.halt = threading.Event()
        self.sock: socket.socket | None = None
        self.buffer: list[Any] = []
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        src = self.source
        try:
            # REPLACE_ME: connect with your system's client library.
            sock = socket.create_connection((src.host, src.port), timeout=10)
        except OSError as exc:
            self.receiver._fail(f"could not connect to {src.host}:{src.port}: {exc}", exc)
            return
        self.sock = sock
        if self.halt.is_set():  # stopped while connecting
            sock.close()
            return
        sock.settimeout(min(self.block_interval, 0.2))  # wake up to cut blocks on time
        pending = b""
        next_cut = time.monotonic() + self.block_interval
        try:
            while not self.halt.is_set():
                try:
                    # REPLACE_ME: read a batch of messages with your client library.
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError("the server closed the connection")
                    *lines, pending = (pending + data).split(b"\n")
                    self.buffer.extend(line.decode("utf-8", "replace") for line in lines)
                except TimeoutError:
                    pass
                if time.monotonic() >= next_cut:
                    self.flush()
                    next_cut = time.monotonic() + self.block_interval
        except OSError as exc:
            if not self.halt.is_set():
                self.flush()  # what was read before the failure counts
                self.receiver._fail(f"reading from {src.host}:{src.port} failed: {exc}", exc)
        finally:
            sock.close()

    def flush(self) -> None:
        """Store the buffer as one block (then, for a reliable source, acknowledge it)."""
        if self.buffer:
            records, self.buffer = self.buffer, []
            self.receiver.storeMany(records)  # returns once stored (and logged)
            self.receiver._failures = 0
            # REPLACE_ME: a reliable receiver acknowledges `records` to its source here.


class ReplaceMeReceiver(Receiver):
    """Receives lines from REPLACE_ME (see :class:`~ember_replace_me.ReplaceMeSource`).

    :param source: the source's configuration.
    """

    def __init__(self, source: ReplaceMeSource) -> None:
        super().__init__()
        self.source = source
        self.delivery = source.delivery
        self._failures = 0
        self._session: _Session | None = None

    def __getstate__(self) -> dict[str, Any]:
        """The configuration only: the running session stays out of checkpoints."""
        state = super().__getstate__()
        state["_session"] = None
        return state

    def name(self) -> str:
        """What listeners and the UI show."""
        return f"ReplaceMeReceiver({self.source.host}:{self.source.port})"

    def onStart(self) -> None:
        """Start the session's thread and return at once."""
        interval = self.conf.getDuration("ember.streaming.blockInterval", 0.2) or 0.2
        session = _Session(self, interval)
        self._session = session
        session.thread = threading.Thread(target=session.run, daemon=True,
                                          name=f"ember-replace_me-{self.streamId}")
        session.thread.start()

    def onStop(self) -> None:
        """Wake the thread, join it, and store the last block."""
        session, self._session = self._session, None
        if session is None:
            return
        session.halt.set()
        sock = session.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked read at once
            except OSError:
                pass
        if session.thread is not None and session.thread is not threading.current_thread():
            session.thread.join()
        try:
            session.flush()  # onStop may store, also during the final stop
        except RuntimeError:
            pass

    def _fail(self, message: str, error: BaseException | None) -> None:
        """Report and restart after the backoff delay."""
        if self.isStopped():
            return
        self._failures += 1
        default = self.conf.getDuration("ember.streaming.receiverRestartDelay", 2.0)
        delay = self.source.restart_delay(self._failures, 2.0 if default is None else default)
        self.restart(f"{message}; reconnecting in {delay:g} s", error, delay)
