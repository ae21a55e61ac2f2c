"""What the examples share to run anywhere with no arguments: demo text, a demo text server,
a thread that feeds a demo source at a steady pace, and a listener that counts batches.

Not part of ember: the examples import it from their own directory
(``python examples/network_wordcount.py`` puts ``examples/`` on ``sys.path``).
"""

from __future__ import annotations

import itertools
import socket
import threading

from ember.pyspark.streaming.listener import StreamingListener

__all__ = ["DEMO_TEXT", "BatchCounter", "DemoServer", "Ticker"]

DEMO_TEXT = [
    "to be or not to be",
    "that is the question",
    "whether tis nobler in the mind to suffer",
    "the slings and arrows of outrageous fortune",
]


class BatchCounter(StreamingListener):
    """Sets :attr:`done` once ``n`` batches have completed."""

    def __init__(self, n: int) -> None:
        self.remaining = n
        self.done = threading.Event()

    def onBatchCompleted(self, batchCompleted: object) -> None:
        """Count one completed batch."""
        self.remaining -= 1
        if self.remaining <= 0:
            self.done.set()


class Ticker:
    """A daemon thread calling :meth:`tick` every ``interval`` seconds until :meth:`close`."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"demo-{type(self).__name__}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        """Send the next piece of demo data."""

    def close(self) -> None:
        """Stop ticking (and wait for the thread)."""
        self._stop.set()
        self._thread.join()


class DemoServer:
    """A text server on 127.0.0.1 (``port`` 0: a free one): sends ``lines`` over and over,
    ``lines_per_second``, to each client in turn."""

    def __init__(self, lines: list[str] = DEMO_TEXT, lines_per_second: float = 4,
                 port: int = 0) -> None:
        self.lines = lines
        self.lines_per_second = lines_per_second
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="demo-text-server",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                for line in itertools.cycle(self.lines):
                    if self._stop.wait(1 / self.lines_per_second):
                        return
                    try:
                        conn.sendall(line.encode("utf-8") + b"\n")
                    except OSError:
                        break  # the client went away: wait for the next one

    def close(self) -> None:
        """Stop sending and close the server."""
        self._stop.set()
        self._thread.join()
        self.listener.close()
