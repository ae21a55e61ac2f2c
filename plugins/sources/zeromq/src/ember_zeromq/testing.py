"""A ZeroMQ publisher for tests and demos that waits for its subscribers.

A plain ``PUB`` socket drops what it sends before a subscriber has connected and subscribed
(ZeroMQ's "slow joiner"). :class:`Publisher` binds an ``XPUB`` socket instead, which is told
of every subscription, and keeps what it is asked to send until a subscriber is there; it can
be restarted on the same endpoint, which is how tests make the connection fail.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable

import zmq

__all__ = ["Publisher"]


class Publisher:
    """An ``XPUB`` socket bound to ``endpoint`` (default: a free TCP port on 127.0.0.1).

    Messages (lists of frames) given to :meth:`send` go out at once while at least one
    subscriber is subscribed, and are kept, in order, while none is. :attr:`connections`
    counts the subscriptions received; a subscriber connecting while another is still
    subscribed to the same prefix counts too.

    :param endpoint: where to bind, e.g. ``tcp://127.0.0.1:5555`` or ``ipc:///tmp/feed``.
    """

    __test__ = False

    def __init__(self, endpoint: str | None = None) -> None:
        self._ctx = zmq.Context(io_threads=1)
        self._lock = threading.Condition()
        self._pending: collections.deque[list[bytes]] = collections.deque()
        self._subscriptions: collections.Counter[bytes] = collections.Counter()
        self._subscribes = 0
        self._sock: zmq.Socket | None = None
        self.endpoint = endpoint or "tcp://127.0.0.1:0"
        self._bind()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name=f"test-zmq-publisher-{self.endpoint}")
        self._thread.start()

    def _bind(self) -> None:
        sock = self._ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscribe, also a prefix's second
        deadline = time.monotonic() + 10
        while True:
            try:
                sock.bind(self.endpoint)
                break
            except zmq.ZMQError as exc:  # the old socket's port is released asynchronously
                if exc.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                    sock.close(linger=0)
                    raise
                time.sleep(0.01)
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._sock = sock
        self._subscriptions.clear()

    # ------------------------------------------------------------------ subscriptions
    def _watch(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                sock = self._sock
                if sock is not None and sock.poll(0):
                    message = sock.recv()
                    prefix = message[1:]
                    # XPUB_VERBOSE passes every subscribe, but an unsubscribe only when
                    # the prefix's last subscriber leaves
                    subscribe = message[:1] == b"\x01"
                    self._subscriptions[prefix] = 1 if subscribe else 0
                    self._subscribes += subscribe
                    self._flush()
                    self._lock.notify_all()
                    continue
            self._closed.wait(0.005)

    @property
    def connections(self) -> int:
        """How many subscriptions arrived so far (a subscriber's reconnection counts again)."""
        with self._lock:
            return self._subscribes

    @property
    def subscribed(self) -> bool:
        """Whether some subscriber is subscribed now."""
        with self._lock:
            return any(n > 0 for n in self._subscriptions.values())

    def wait_subscribed(self, timeout: float = 20.0) -> None:
        """Wait until a subscriber is subscribed.

        :raises TimeoutError: none came within ``timeout`` seconds.
        """
        with self._lock:
            if not self._lock.wait_for(
                    lambda: any(n > 0 for n in self._subscriptions.values()), timeout):
                raise TimeoutError(f"no subscriber subscribed to {self.endpoint} "
                                   f"within {timeout} s")

    # ------------------------------------------------------------------ sending
    def _flush(self) -> None:
        if self._sock is None or not any(n > 0 for n in self._subscriptions.values()):
            return
        while self._pending:
            self._sock.send_multipart(self._pending.popleft())

    def send(self, messages: Iterable[list[bytes] | bytes]) -> None:
        """Send each message (a list of frames, or one ``bytes`` frame), or keep them until a
        subscriber is there."""
        with self._lock:
            for message in messages:
                self._pending.append([message] if isinstance(message, bytes) else list(message))
            self._flush()

    # ------------------------------------------------------------------ failing
    def restart(self) -> None:
        """Close the socket (connected subscribers lose their connection) and bind a new one
        on the same endpoint; what is sent meanwhile waits for a subscriber."""
        with self._lock:
            if self._sock is not None:
                self._sock.close(linger=0)
            self._sock = None
            self._bind()

    def close(self) -> None:
        """Close the socket and the context."""
        self._closed.set()
        self._thread.join()
        with self._lock:
            if self._sock is not None:
                self._sock.close(linger=0)
                self._sock = None
        self._ctx.term()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
