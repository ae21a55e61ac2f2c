"""``SocketSource``: the configuration of a socket stream (no socket, no thread)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

import attrs
from ember.receivers import ReceiverSource
from ember.sources import Delivery
from ember.storagelevel import StorageLevel

if TYPE_CHECKING:
    from ember.receivers import Receiver

__all__ = ["DEFAULT_MAX_LINE_LENGTH", "DEFAULT_READ_CHUNK_SIZE", "SocketSource"]

#: The longest line kept by default (64 MiB); a longer one is dropped and reported.
DEFAULT_MAX_LINE_LENGTH = 64 * 1024 * 1024
#: How many bytes one ``recv`` asks for by default (1 MiB).
DEFAULT_READ_CHUNK_SIZE = 1024 * 1024

_ERROR_POLICIES = ("replace", "strict")


def _check_hostname(_inst: Any, _attr: Any, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"the socket source needs a host name such as 'localhost', got {value!r:.80}"
        )


def _check_port(_inst: Any, _attr: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"port must be an integer from 1 to 65535, got {value!r:.80}")


def _check_positive_int(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attr.name} must be a positive number of bytes, got {value!r:.80}")


def _check_seconds(minimum_exclusive: bool) -> Callable[[Any, attrs.Attribute, Any], None]:
    def check(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            value > 0 if minimum_exclusive else value >= 0
        )
        if not ok:
            bound = "positive" if minimum_exclusive else "zero or positive"
            raise ValueError(f"{attr.name} must be a {bound} number of seconds, got {value!r:.80}")

    return check


def _check_errors(_inst: Any, _attr: Any, value: Any) -> None:
    if value not in _ERROR_POLICIES:
        raise ValueError(
            f"errors must be 'replace' (undecodable bytes become U+FFFD) or 'strict' (the "
            f"batch fails with UnicodeDecodeError), got {value!r:.80}"
        )


def _check_converter(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(
            f"converter must be a function taking a binary file and returning an iterable "
            f"of records, got {type(value).__name__}: {value!r:.80}"
        )


def _check_storage_level(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, StorageLevel):
        raise TypeError(f"storageLevel must be an ember StorageLevel, got {value!r:.80}")


@attrs.frozen
class SocketSource(ReceiverSource):
    """A stream read from a TCP server: ``ssc.socketTextStream(host, port)`` or
    ``ssc.socketStream(host, port, converter)``.

    Delivery: **at most once**. A socket cannot be acknowledged, so data in flight when a
    connection breaks, or received but not yet in a batch when the context stops without
    ``stopGraceFully``, is lost; nothing is ever delivered twice.

    Text mode (no ``converter``): one record per line of UTF-8 text, split at ``\\n`` (a
    ``\\r`` before it stays in the line). The receiver reads large chunks and stores them as
    raw bytes cut at the last line break; the workers decode and split them, so the driver
    does no per-line work.

    :param hostname: the server's host name or address.
    :param port: the server's TCP port.
    :param storageLevel: accepted for compatibility with Spark; received blocks are kept
        serialized in the driver's memory until their batch is done.
    :param converter: ``converter(binary_file)`` returns an iterable of records, read from a
        buffered binary file object over the socket (``socketStream``). It runs in the
        receiver's thread on the driver; records are stored in chunks.
    :param errors: how undecodable bytes are handled (text mode): ``"replace"`` (default)
        turns them into U+FFFD; ``"strict"`` fails the batch's task with
        :class:`UnicodeDecodeError`, which listeners see as the batch's failure and
        ``awaitTermination`` raises.
    :param maxLineLength: the longest line kept, in bytes (default 64 MiB). A longer line
        is dropped as it arrives — never buffered whole — and reported to listeners
        (``onReceiverError``); the lines after it are delivered.
    :param connectTimeout: seconds to wait for a connection before giving up on that try.
    :param restartDelay: seconds before the first reconnection after the connection failed,
        was refused, reset or closed by the server; doubled after each failure in a row, and
        back to this value once data arrives again. ``None`` (default): the application's
        ``ember.streaming.receiverRestartDelay`` (2 s unless set).
    :param maxRestartDelay: the longest wait between two reconnections (default 30 s, or
        ``restartDelay`` when that is longer).
    :param readChunkSize: bytes asked for by each read (default 1 MiB); at most
        ``maxLineLength + 1`` are used.

    >>> SocketSource("localhost", 9999).delivery.value
    'at-most-once'
    """

    name = "socket"
    delivery = Delivery.AT_MOST_ONCE

    hostname: str = attrs.field(validator=_check_hostname)
    port: int = attrs.field(validator=_check_port)
    storageLevel: StorageLevel | None = attrs.field(
        default=None, kw_only=True, validator=_check_storage_level
    )
    converter: Callable[[IO[bytes]], Iterable[Any]] | None = attrs.field(
        default=None, kw_only=True, validator=_check_converter
    )
    errors: str = attrs.field(default="replace", kw_only=True, validator=_check_errors)
    maxLineLength: int = attrs.field(
        default=DEFAULT_MAX_LINE_LENGTH, kw_only=True, validator=_check_positive_int
    )
    connectTimeout: float = attrs.field(default=10.0, kw_only=True,
                                        validator=_check_seconds(True))
    restartDelay: float | None = attrs.field(
        default=None, kw_only=True,
        validator=attrs.validators.optional(_check_seconds(False)),
    )
    maxRestartDelay: float | None = attrs.field(
        default=None, kw_only=True,
        validator=attrs.validators.optional(_check_seconds(False)),
    )
    readChunkSize: int = attrs.field(
        default=DEFAULT_READ_CHUNK_SIZE, kw_only=True, validator=_check_positive_int
    )

    def __attrs_post_init__(self) -> None:
        if (self.restartDelay is not None and self.maxRestartDelay is not None
                and self.maxRestartDelay < self.restartDelay):
            raise ValueError(
                f"maxRestartDelay ({self.maxRestartDelay!r} s) must not be shorter than "
                f"restartDelay ({self.restartDelay!r} s)"
            )

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 addresses in brackets), for messages."""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{host}:{self.port}"

    def restart_delay(self, failures: int, default: float = 2.0) -> float:
        """The wait before reconnecting after ``failures`` failures in a row (1 or more).

        :param default: the first delay when ``restartDelay`` is ``None``.

        >>> SocketSource("h", 1, restartDelay=0.5, maxRestartDelay=3).restart_delay(4)
        3
        """
        first = self.restartDelay if self.restartDelay is not None else default
        longest = self.maxRestartDelay if self.maxRestartDelay is not None else max(30.0, first)
        return min(first * 2 ** max(failures - 1, 0), longest)

    def createReceiver(self) -> Receiver:
        """A new receiver: :class:`SocketTextReceiver`, or :class:`SocketReceiver` with a
        ``converter``."""
        from ember_socket._receivers import SocketReceiver, SocketTextReceiver

        if self.converter is not None:
            return SocketReceiver(self)
        return SocketTextReceiver(self)
