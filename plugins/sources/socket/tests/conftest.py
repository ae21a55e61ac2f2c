"""Fixtures of ember-socket's tests: real TCP servers on 127.0.0.1 and streams driven by a
manual clock."""

from __future__ import annotations

import select
import selectors
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ember.testing import StreamHarness

#: Seconds any wait of these tests may take at most (all of them end much sooner).
WAIT = 20.0


class LineServer:
    """A TCP server on 127.0.0.1 serving one client at a time.

    Bytes sent while no client is connected are kept and sent, in order, to the next client
    that connects (so a receiver that reconnects gets them). ``fail()`` closes the client's
    connection cleanly, ``reset()`` aborts it (RST).

    :param port: the port to listen on (0: any free port).
    """

    __test__ = False

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self.listener.getsockname()[1]
        self._cond = threading.Condition()
        self._conn: socket.socket | None = None
        self._pending: list[bytes] = []
        self._closed = False
        self.connections = 0
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name=f"test-line-server-{self.port}")
        self._thread.start()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.listener, selectors.EVENT_READ)
            while not self._closed:
                if not sel.select(0.05):
                    continue
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    return
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with self._cond:
                    if self._closed:
                        conn.close()
                        return
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = conn
                    self.connections += 1
                    pending, self._pending = self._pending, []
                    try:
                        for data in pending:
                            conn.sendall(data)
                    except OSError:
                        self._pending = pending
                    self._cond.notify_all()

    # ------------------------------------------------------------------ sending
    def _client_gone(self) -> bool:
        """Whether the client closed its end (it never sends: readable means closed)."""
        assert self._conn is not None
        readable, _, _ = select.select([self._conn], [], [], 0)
        if not readable:
            return False
        try:
            return self._conn.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def send_bytes(self, data: bytes) -> None:
        """Send ``data`` to the client, or keep it for the next one (also when the client
        has gone and not yet come back)."""
        with self._cond:
            if self._conn is not None and self._client_gone():
                self._conn.close()
                self._conn = None
            if self._conn is not None:
                try:
                    self._conn.sendall(data)
                    return
                except OSError:
                    self._conn.close()
                    self._conn = None
            self._pending.append(data)

    def send(self, records: list[Any]) -> None:
        """Send each record as a line."""
        self.send_bytes("".join(f"{r}\n" for r in records).encode("utf-8"))

    def send_bytewise(self, data: bytes) -> None:
        """Send ``data`` one byte per ``send`` call (waits for a client)."""
        self.wait_connections(1)
        for i in range(len(data)):
            self.send_bytes(data[i:i + 1])

    # ------------------------------------------------------------------ failing
    def fail(self) -> None:
        """Close the client's connection (a clean end of stream for the client)."""
        with self._cond:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def reset(self) -> None:
        """Abort the client's connection: the client gets a connection reset."""
        with self._cond:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    # ------------------------------------------------------------------ waiting
    def wait_connections(self, n: int, timeout: float = WAIT) -> None:
        """Wait until ``n`` clients connected in all."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self.connections >= n, timeout)
        assert ok, f"{self.connections} connections to port {self.port} within {timeout} s, expected {n}"

    def wait_client_gone(self, timeout: float = WAIT) -> None:
        """Wait until the connected client closed its end (reads its EOF)."""
        with self._cond:
            conn = self._conn
        assert conn is not None, "no client is connected"
        conn.settimeout(timeout)
        assert conn.recv(1) == b"", "the client sent data instead of closing"

    def close(self) -> None:
        """Stop listening and close the client's connection."""
        with self._cond:
            self._closed = True
            conn, self._conn = self._conn, None
        self._thread.join(WAIT)
        self.listener.close()
        if conn is not None:
            conn.close()


class StreamTest(StreamHarness):
    """The harness of ember.testing, with this plugin's application name."""

    def __init__(self, master: str) -> None:
        super().__init__(master, app_name="socket-test")


@pytest.fixture
def servers() -> Iterator[Callable[..., LineServer]]:
    """A function making :class:`LineServer` instances, all closed after the test."""
    made: list[LineServer] = []

    def make(port: int = 0) -> LineServer:
        server = LineServer(port)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def stream_test(ember_master: str) -> Iterator[StreamTest]:
    """A :class:`StreamTest` on each executor (``inline`` and ``local[2]``), stopped after."""
    test = StreamTest(ember_master)
    try:
        yield test
    finally:
        test.ssc.stop(stopSparkContext=True)


@pytest.fixture
def inline_stream_test() -> Iterator[StreamTest]:
    """A :class:`StreamTest` on the inline executor only, stopped after."""
    test = StreamTest("inline")
    try:
        yield test
    finally:
        test.ssc.stop(stopSparkContext=True)
