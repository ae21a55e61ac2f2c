"""The local executor's reader thread, when a worker's connection is shut while it reads."""

from __future__ import annotations

import socket
import struct
import sys
import threading
from multiprocessing.connection import Connection

from ember._executors.local import _Reader
from ember.testing import wait_until


class _Slot:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.deaths: list[Connection] = []

    def on_death(self, conn: Connection) -> None:
        self.deaths.append(conn)

    def on_result(self, data: bytes) -> None:
        raise AssertionError(f"no whole message was sent, got {data!r}")


def _reading(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident)  # type: ignore[arg-type]
    while frame is not None:
        if frame.f_code.co_name == "_recv":
            return True
        frame = frame.f_back
    return False


def test_a_connection_closed_mid_read_is_dropped_without_an_error_in_the_thread():
    reader = _Reader()
    errors: list[BaseException] = []
    previous = threading.excepthook
    ours, theirs = socket.socketpair()
    conn = Connection(ours.detach())
    slot = _Slot(conn)
    reader.watch(slot)  # type: ignore[arg-type]
    thread = reader._thread
    assert thread is not None

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.thread is thread:
            errors.append(args.exc_value)  # type: ignore[arg-type]
        else:  # a thread of another test, still ending: not this test's business
            previous(args)

    threading.excepthook = hook
    try:
        header = struct.pack("!i", 10)
        theirs.sendall(header[:2])  # the reader waits inside the read of the length
        wait_until(lambda: _reading(thread), "the reader to be inside the read")
        conn.close()  # what shutdown does, from another thread
        try:  # the length completes: the body's read follows
            theirs.sendall(header[2:] + b"x" * 10)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the close won the race: the reader's read of the length ends instead
        wait_until(lambda: slot.deaths or errors, "the reader to drop the connection", 10)
        reader.forget(conn)
        thread.join(10)
        assert not thread.is_alive()
        assert errors == [], f"the reader thread raised {errors!r}"
    finally:
        threading.excepthook = previous
        theirs.close()
