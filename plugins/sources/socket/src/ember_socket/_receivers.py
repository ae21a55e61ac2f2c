"""The socket receivers: connect, read, store; reconnect with backoff; stop promptly.

Both receivers run one thread each. The thread connects (polling so that a stop is never
held up by a slow connect), reads until the connection ends, and then asks its supervisor
for a restart after a delay that doubles with each failure in a row. ``onStop`` shuts the
socket down — which wakes a ``recv`` blocked on a silent peer — and joins the thread, so a
stopped receiver leaves no thread and no open socket behind.

The text receiver is the fast path (``socketTextStream``): it reads chunks of up to
``readChunkSize`` bytes into one reused buffer, stores everything up to the last line break
of what it holds with ``storeBytes`` (one copy, no per-line work), and keeps the unfinished
line at the front of the buffer for the next read. Only that carried line is measured
against ``maxLineLength``; since a buffer never grows past ``maxLineLength + 1`` bytes, no
stored line can be longer, and a longer one is skipped as it streams by.
"""

from __future__ import annotations

import errno
import io
import os
import selectors
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from ember.receivers import Receiver
from ember.storagelevel import StorageLevel

if TYPE_CHECKING:
    from ember_socket._source import SocketSource

__all__ = ["SocketReceiver", "SocketTextReceiver"]

#: Records a converter yields before they are stored as one block (``storeMany``).
CONVERTER_CHUNK_RECORDS = 10_000
_IN_PROGRESS = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, errno.EAGAIN}
_POLL_S = 0.05


class _SocketReceiverBase(Receiver):
    """Connection handling shared by the text and converter receivers."""

    def __init__(self, source: SocketSource) -> None:
        super().__init__(source.storageLevel or StorageLevel.MEMORY_AND_DISK_SER_2)
        self.source = source
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._failures = 0

    def name(self) -> str:
        """``SocketTextReceiver(host:port)``: the class and the server, for listeners."""
        return f"{type(self).__name__}({self.source.address})"

    # ------------------------------------------------------------------ lifecycle
    def onStart(self) -> None:
        """Start the thread that connects and reads (returns at once)."""
        self._closing.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"ember-socket-receiver-{self.source.address}", daemon=True
        )
        self._thread.start()

    def onStop(self) -> None:
        """Shut the socket down (waking a blocked read or connect) and join the thread."""
        self._closing.set()
        with self._lock:
            sock = self._sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # not connected yet, or already closed by the peer
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
            self._thread = None

    def _stopping(self) -> bool:
        return self._closing.is_set() or self.isStopped()

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        try:
            sock = self._connect()
        except OSError as exc:
            self._fail(f"could not connect to {self.source.address}: {exc}", exc)
            return
        if sock is None:
            return
        try:
            reason = self._receive(sock)
            if reason is not None and not self._stopping():
                self._fail(reason, None)
        except Exception as exc:
            if not self._stopping():
                self._fail(self._describe_failure(exc), exc)
        finally:
            self._close()

    def _describe_failure(self, exc: BaseException) -> str:
        return f"receiving from {self.source.address} failed: {type(exc).__name__}: {exc}"

    def _fail(self, message: str, error: BaseException | None) -> None:
        """Report ``message`` and restart after the backoff delay."""
        if self._stopping():
            return
        self._failures += 1
        # The application's ember.streaming.receiverRestartDelay, as the supervisor knows it.
        default = getattr(self._supervisor, "restart_delay", 2.0)
        delay = self.source.restart_delay(self._failures, float(default))
        self.restart(f"{message}; reconnecting in {delay:g} s", error, delay)

    def _connect(self) -> socket.socket | None:
        """A connected, blocking socket; ``None`` when stopped while connecting.

        :raises OSError: refused, unreachable, timed out (the last address's error).
        """
        src = self.source
        deadline = time.monotonic() + src.connectTimeout
        last: OSError | None = None
        for family, kind, proto, _, addr in socket.getaddrinfo(
            src.hostname, src.port, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            with self._lock:
                if self._closing.is_set():
                    sock.close()
                    return None
                self._sock = sock
            try:
                if self._connect_one(sock, addr, deadline):
                    return sock
                self._close()
                return None
            except OSError as exc:
                last = exc
                self._close()
        raise last or OSError(f"no address found for {src.address}")

    def _connect_one(self, sock: socket.socket, addr: Any, deadline: float) -> bool:
        sock.setblocking(False)
        err = sock.connect_ex(addr)
        if err in _IN_PROGRESS:
            with selectors.DefaultSelector() as sel:
                sel.register(sock, selectors.EVENT_WRITE)
                while not sel.select(_POLL_S):
                    if self._closing.is_set():
                        return False
                    if time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"no connection within connectTimeout={self.source.connectTimeout:g} s"
                        )
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
        sock.setblocking(True)
        return not self._closing.is_set()

    def _close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _receive(self, sock: socket.socket) -> str | None:
        """Read until the connection ends; the reason to restart, ``None`` when stopping."""
        raise NotImplementedError

    def _closed_by_server(self) -> str:
        return f"the server at {self.source.address} closed the connection"


class SocketTextReceiver(_SocketReceiverBase):
    """Receives UTF-8 lines from a TCP server (``socketTextStream``), storing raw bytes.

    Each read fills one reused buffer; the complete lines it holds are stored with one
    ``storeBytes`` call and the unfinished line moves to the buffer's front. Decoding, with
    the source's ``errors`` policy, and splitting happen in the workers.

    :param source: the :class:`~ember_socket.SocketSource` configuration.
    """

    def __init__(self, source: SocketSource) -> None:
        super().__init__(source)
        #: How the workers decode this receiver's text (read by ember's block decoding).
        self.text_errors = source.errors

    def _receive(self, sock: socket.socket) -> str | None:
        limit = self.source.maxLineLength
        chunk = min(self.source.readChunkSize, limit + 1)
        buf = bytearray(chunk)
        view = memoryview(buf)
        held = 0  # bytes of the unfinished line at the front of buf
        dropping = -1  # >= 0: bytes of an over-long line skipped so far
        got_data = False
        try:
            while True:
                if len(buf) - held < chunk // 4 + 1 and len(buf) <= limit:
                    # a long line fills the buffer: grow it, up to limit + 1 bytes
                    size = min(max(2 * len(buf), held + chunk), limit + 1)
                    view.release()
                    buf.extend(bytes(size - len(buf)))  # in place: no second copy of the line
                    view = memoryview(buf)
                n = sock.recv_into(view[held:held + chunk])
                if n == 0:
                    break
                if not got_data:
                    got_data = True
                    self._failures = 0
                end = held + n
                begin = 0
                if dropping >= 0:
                    nl = buf.find(b"\n", 0, end)
                    if nl < 0:
                        dropping += end
                        continue
                    dropping = -1
                    begin = nl + 1
                cut = buf.rfind(b"\n", max(begin, held), end)
                if cut >= 0:
                    self.storeBytes(bytes(view[begin:cut + 1]))
                    begin = cut + 1
                held = end - begin
                if held > limit:
                    self.reportError(
                        f"dropped a line from {self.source.address} longer than "
                        f"maxLineLength={limit} bytes; skipping to the next line break"
                    )
                    dropping, held = held, 0
                    if len(buf) > chunk:  # the skipped line needs no room: shrink
                        view.release()
                        buf = bytearray(chunk)
                        view = memoryview(buf)
                elif begin:
                    if len(buf) > chunk and held < chunk // 2:  # shrink after a long line
                        tail = bytes(view[begin:end])
                        view.release()
                        buf = bytearray(chunk)
                        view = memoryview(buf)
                        buf[:held] = tail
                    elif held:
                        buf[:held] = view[begin:end].tobytes()
        except OSError as exc:
            if self._stopping():
                return None
            lost = f"; a partial line of {held} bytes was dropped" if held else ""
            raise _ConnectionLost(f"{self._describe_failure(exc)}{lost}") from exc
        finally:
            view.release()
        if self._stopping():
            return None
        if held:  # a clean end of stream finishes the last line
            self.storeBytes(bytes(buf[:held]))
        return self._closed_by_server()

    def _describe_failure(self, exc: BaseException) -> str:
        if isinstance(exc, _ConnectionLost):
            return str(exc)
        return super()._describe_failure(exc)


class _ConnectionLost(OSError):
    """The connection broke while reading (its message says what was dropped)."""


class _SocketRawReader(io.RawIOBase):
    """The socket as a raw binary file; stores the converter's pending records before
    every read from the network, so none wait while the stream is idle."""

    def __init__(self, sock: socket.socket, before_read: Any) -> None:
        super().__init__()
        self._sock = sock
        self._before_read = before_read

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        self._before_read()
        return self._sock.recv_into(b)


class SocketReceiver(_SocketReceiverBase):
    """Receives the records ``converter(binary_file)`` makes of a TCP stream
    (``socketStream``).

    The converter reads a buffered binary file over the socket and yields records; they are
    stored with ``storeMany`` in chunks of up to :data:`CONVERTER_CHUNK_RECORDS`, and always
    before the file waits for more bytes, so an idle stream holds nothing back. The
    converter runs in the receiver's thread on the driver: prefer ``socketTextStream`` for
    text, whose lines are split in the workers.

    :param source: the :class:`~ember_socket.SocketSource` configuration (with a converter).
    """

    def _receive(self, sock: socket.socket) -> str | None:
        converter = self.source.converter
        assert converter is not None
        pending: list[Any] = []

        def flush() -> None:
            if pending:
                self.storeMany(pending)
                pending.clear()
                self._failures = 0

        raw = _SocketRawReader(sock, flush)
        with io.BufferedReader(raw, buffer_size=min(self.source.readChunkSize, 1 << 20)) as f:
            try:
                for record in converter(f):
                    pending.append(record)
                    if len(pending) >= CONVERTER_CHUNK_RECORDS:
                        flush()
            finally:
                if not self._stopping():
                    flush()  # what the converter made before it ended (or failed) counts
        if self._stopping():
            return None
        return self._closed_by_server()
