"""Fixtures of the replace_me tests: REPLACE_ME — start a real (or faithfully faked) instance
of your system here, on 127.0.0.1 and a free port, and stop it after the test. This template's
feed is a small TCP server sending lines."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest


class LineServer:
    """A TCP server on 127.0.0.1 sending lines to one client at a time; lines sent while no
    client is connected are kept for the next one. ``fail()`` drops the client.

    The contract's ``feed`` needs ``send(records)`` and ``fail()``.
    """

    __test__ = False

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._conn: socket.socket | None = None
        self._pending: list[bytes] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                self._conn = conn
                pending, self._pending = self._pending, []
                for data in pending:
                    self._sendall(data)

    def _sendall(self, data: bytes) -> None:
        try:
            assert self._conn is not None
            self._conn.sendall(data)
        except OSError:
            self._conn = None
            self._pending.append(data)

    def _client_gone(self) -> bool:
        import select

        assert self._conn is not None
        readable, _, _ = select.select([self._conn], [], [], 0)
        return bool(readable) and self._conn.recv(1, socket.MSG_PEEK) == b""

    def send(self, records: list[Any]) -> None:
        data = "".join(f"{r}\n" for r in records).encode()
        with self._lock:
            if self._conn is not None and self._client_gone():
                self._conn.close()
                self._conn = None
            if self._conn is None:
                self._pending.append(data)
            else:
                self._sendall(data)

    def fail(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._closed.set()
        self._thread.join()
        self.listener.close()
        self.fail()


@pytest.fixture
def line_server() -> Iterator[LineServer]:
    server = LineServer()
    try:
        yield server
    finally:
        server.close()
