"""The ``socket`` source for ember: ``ssc.socketTextStream(host, port)`` and
``ssc.socketStream(host, port, converter)``.

A receiver connects to a TCP server and turns what it sends into a stream: lines of UTF-8
text (decoded and split in the workers, so the driver does no per-line work), or the records
a ``converter`` makes of the byte stream. Broken connections are reported to listeners and
retried with an exponential backoff; delivery is at most once (a socket cannot be
acknowledged). See :class:`SocketSource` for every option.
"""

from __future__ import annotations

from ember_socket._receivers import SocketReceiver, SocketTextReceiver
from ember_socket._source import DEFAULT_MAX_LINE_LENGTH, DEFAULT_READ_CHUNK_SIZE, SocketSource

__all__ = [
    "DEFAULT_MAX_LINE_LENGTH",
    "DEFAULT_READ_CHUNK_SIZE",
    "SocketReceiver",
    "SocketSource",
    "SocketTextReceiver",
]
