"""A replayable source and its reliable receiver: the worked example of the reliable pattern.

:class:`ReplayableServer` is a real TCP server on 127.0.0.1 (a thread of the process that
starts it) that sends numbered records and sends again whatever was not acknowledged:

1. the client connects and sends one line: ``HELLO`` (start after what the server has seen
   acknowledged) or ``FROM <n>`` (the client holds every record before ``n``);
2. the server sends records ``n, n+1, …`` as lines of text (``"17\\n"``), up to
   :attr:`ReplayableServer.total` and at most :attr:`ReplayableServer.limit`;
3. the client sends ``ACK <n>`` lines: every record before ``n`` is safely stored.

A new connection replaces the previous one and starts again from its first line's position,
so records sent but never acknowledged are sent again — as a broker redelivers.

:class:`ReplayableReceiver` is a *reliable* receiver for it. It stores what it read with
``storeMany(records, metadata=next)`` and acknowledges only after that returned — with the
write-ahead log on, once the records are logged. When it (re)starts it resumes at
``lastStoredMetadata()``: exactly after the last records it stored, which the write-ahead
log keeps across a driver crash. So nothing is lost (unacknowledged records are sent again)
and nothing is stored twice (it never asks for what it already stored)::

    with ReplayableServer(total=1000) as server:
        stream = ssc.receiverStream(ReplayableReceiver(server.port))
        ...
        server.wait_acked(1000)

Subclass the receiver and override :meth:`ReplayableReceiver.acknowledge` to watch or
interfere with the moment between storing and acknowledging (the failure tests kill the
driver there).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from ember.receivers import Receiver
from ember.sources import Delivery
from ember.storagelevel import StorageLevel

__all__ = ["ReplayableReceiver", "ReplayableServer"]

#: Seconds a blocked socket operation waits before looking at the stop flag again.
_POLL_S = 0.05


class ReplayableServer:
    """A TCP server of numbered records that resends what was not acknowledged.

    :param total: how many records there are (``None``: no end).
    :param limit: send no record at or past this number until :meth:`release` raises it
        (``None``: no limit) — lets a test hand out records in steps.
    :param rate: records per second at most (``None``: as fast as the client reads).
    :param host: the address to listen on.
    :param port: the port (0: a free one; see :attr:`port`).

    Thread-safe. Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    __test__ = False

    def __init__(self, total: int | None = None, *, limit: int | None = None,
                 rate: float | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.total = total
        self._limit = limit
        self.rate = rate
        self.host = host
        self._requested_port = port
        self._cond = threading.Condition()
        self._acked = 0
        self._sent = 0
        self._connections = 0
        self._conn: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self.port = 0

    # ------------------------------------------------------------------ the test's side
    def start(self) -> ReplayableServer:
        """Listen and serve in background threads; returns ``self``."""
        server = socket.create_server((self.host, self._requested_port))
        server.settimeout(_POLL_S)
        self._server = server
        self.port = server.getsockname()[1]
        self._spawn(self._accept_loop, "ember-replayable-accept")
        return self

    def stop(self) -> None:
        """Close every socket and join every thread."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
            conn, self._conn = self._conn, None
        _close(conn)
        _close(self._server)
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join()

    def __enter__(self) -> ReplayableServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to."""
        return self.host, self.port

    @property
    def acked(self) -> int:
        """Every record before this number has been acknowledged."""
        with self._cond:
            return self._acked

    @property
    def sent(self) -> int:
        """One past the highest record sent so far (on any connection)."""
        with self._cond:
            return self._sent

    @property
    def connections(self) -> int:
        """How many clients have connected so far."""
        with self._cond:
            return self._connections

    @property
    def limit(self) -> int | None:
        """Records at or past this number are held back (``None``: none are)."""
        with self._cond:
            return self._limit

    def release(self, limit: int | None) -> None:
        """Let records up to (not including) ``limit`` be sent (``None``: all)."""
        with self._cond:
            self._limit = limit
            self._cond.notify_all()

    def disconnect(self) -> None:
        """Break the current connection, as a network failure would (the client reconnects,
        and what it had not acknowledged is sent again)."""
        with self._cond:
            conn, self._conn = self._conn, None
            self._cond.notify_all()
        _close(conn)

    def wait_acked(self, n: int, timeout: float = 30.0) -> bool:
        """Wait until every record before ``n`` is acknowledged; ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._acked >= n, timeout)

    def wait_connections(self, n: int, timeout: float = 30.0) -> bool:
        """Wait until ``n`` clients have connected in all; ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._connections >= n, timeout)

    # ------------------------------------------------------------------ serving
    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(_POLL_S)
            with self._cond:
                old, self._conn = self._conn, conn
                self._connections += 1
                self._cond.notify_all()
            _close(old)  # one client at a time: the newest wins
            self._spawn(self._serve, "ember-replayable-conn", conn)

    def _current(self, conn: socket.socket) -> bool:
        return not self._stop.is_set() and self._conn is conn

    def _serve(self, conn: socket.socket) -> None:
        try:
            lines = _lines(conn, lambda: self._current(conn))
            first = next(lines, None)
            if first is None:
                return
            with self._cond:
                if first.startswith(b"FROM "):
                    position = int(first[5:])
                    self._acked = max(self._acked, position)
                else:
                    position = self._acked
            self._spawn(self._send_loop, "ember-replayable-send", conn, position)
            for line in lines:
                if line.startswith(b"ACK "):
                    with self._cond:
                        self._acked = max(self._acked, int(line[4:]))
                        self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                if self._conn is conn:
                    self._conn = None
            _close(conn)

    def _send_loop(self, conn: socket.socket, position: int) -> None:
        chunk = 1000 if not self.rate else max(1, int(self.rate * _POLL_S))
        started, sent_here = time.monotonic(), 0
        try:
            while True:
                with self._cond:
                    while self._current(conn):
                        end = self.total if self._limit is None else (
                            self._limit if self.total is None else min(self.total, self._limit))
                        if end is None or position < end:
                            break
                        self._cond.wait(_POLL_S)
                    else:
                        return
                    upto = position + chunk if end is None else min(end, position + chunk)
                if self.rate:  # pace: never ahead of rate * elapsed
                    ahead = (sent_here + (upto - position)) / self.rate - (
                        time.monotonic() - started)
                    if ahead > 0 and self._stop.wait(ahead):
                        return
                data = "".join(f"{i}\n" for i in range(position, upto)).encode()
                _send_all(conn, data, lambda: self._current(conn))
                sent_here += upto - position
                position = upto
                with self._cond:
                    self._sent = max(self._sent, position)
        except OSError:
            _close(conn)


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def _send_all(sock: socket.socket, data: bytes, alive: Any) -> None:
    view = memoryview(data)
    while view:
        if not alive():
            raise OSError("connection replaced or server stopped")
        try:
            n = sock.send(view)
        except TimeoutError:
            continue
        view = view[n:]


def _lines(sock: socket.socket, alive: Any) -> Iterator[bytes]:
    """The lines read from ``sock`` (without ``\\n``) until it closes or ``alive()`` fails."""
    buf = b""
    while alive():
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        if not data:
            return
        buf += data
        *lines, buf = buf.split(b"\n")
        yield from lines


class ReplayableReceiver(Receiver):
    """The reliable receiver of a :class:`ReplayableServer` (see the module documentation).

    :param port: the server's port.
    :param host: the server's address.
    :param batch_size: at most this many records per ``storeMany`` block.
    :param max_wait: seconds to wait for more records before storing a smaller block.
    :param restart_delay: seconds before reconnecting after the connection failed.

    Records are the numbers as ``int``. Delivery: at least once on its own; with the
    write-ahead log on, every record is processed exactly once, also across driver
    failures, since it resumes at ``lastStoredMetadata()``.
    """

    __test__ = False
    delivery = Delivery.AT_LEAST_ONCE

    def __init__(self, port: int, host: str = "127.0.0.1", *, batch_size: int = 100,
                 max_wait: float = 0.05, restart_delay: float = 0.2,
                 storageLevel: StorageLevel = StorageLevel.MEMORY_AND_DISK_SER) -> None:
        super().__init__(storageLevel)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        self.host = host
        self.port = port
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.restart_delay = restart_delay
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._halt = threading.Event()

    def __setstate__(self, state: dict[str, Any]) -> None:
        base = getattr(super(), "__setstate__", None)
        if base is not None:
            base(state)
        else:
            self.__dict__.update(state)
        # loaded from a checkpoint: no connection, no thread yet
        self._thread, self._sock, self._halt = None, None, threading.Event()

    def name(self) -> str:
        """``ReplayableReceiver(host:port)``."""
        return f"ReplayableReceiver({self.host}:{self.port})"

    def onStart(self) -> None:
        """Start the thread that connects, reads, stores and acknowledges."""
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._halt,), daemon=True,
                                        name=f"ember-replayable-receiver-{self.streamId}")
        self._thread.start()

    def onStop(self) -> None:
        """Close the connection and join the thread."""
        self._halt.set()
        _close(self._sock)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def acknowledge(self, sock: socket.socket, position: int) -> None:
        """Tell the server every record before ``position`` is stored (called right after
        ``storeMany`` returned; override to observe that moment)."""
        sock.sendall(b"ACK %d\n" % position)

    # ------------------------------------------------------------------ the thread
    def _run(self, halt: threading.Event) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=1.0)
        except OSError as exc:
            if not halt.is_set():
                self.restart(f"cannot connect to {self.host}:{self.port}", exc,
                             self.restart_delay)
            return
        self._sock = sock
        try:
            sock.settimeout(self.max_wait)
            position = self.lastStoredMetadata()
            sock.sendall(b"HELLO\n" if position is None else b"FROM %d\n" % position)
            self._receive(sock, halt, position)
        except Exception as exc:
            if not halt.is_set() and not self.isStopped():
                self.restart(f"connection to {self.host}:{self.port} failed", exc,
                             self.restart_delay)
        finally:
            _close(sock)

    def _receive(self, sock: socket.socket, halt: threading.Event, position: int | None) -> None:
        buf = b""
        records: list[int] = []
        while not halt.is_set() and not self.isStopped():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                data = None
            if data == b"":
                raise ConnectionError("the server closed the connection")
            if data:
                buf += data
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    seq = int(line)
                    if position is None or seq >= position:  # never store a record twice
                        records.append(seq)
                        position = seq + 1
            while records and (len(records) >= self.batch_size or data is None):
                block, records = records[: self.batch_size], records[self.batch_size:]
                nxt = block[-1] + 1
                self.storeMany(block, metadata=nxt)  # returns once stored (and logged) ...
                self.acknowledge(sock, nxt)  # ... so acknowledging now loses nothing
