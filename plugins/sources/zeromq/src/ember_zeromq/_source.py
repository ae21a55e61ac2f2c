"""``ZeroMQSource``: the configuration of a ZeroMQ stream (no socket, no thread)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs
from ember.receivers import ReceiverSource
from ember.sources import Delivery
from ember.storagelevel import StorageLevel

if TYPE_CHECKING:
    from ember.receivers import Receiver
    from ember.streaming.context import StreamingContext
    from ember.streaming.dstream import DStream

__all__ = ["ZeroMQSource", "frames_as_bytes", "last_frame_as_text"]

_TRANSPORTS = ("tcp", "ipc")


def last_frame_as_text(frames: list[bytes]) -> list[str]:
    """A ``bytesToObjects`` for messages ``[topic, payload]`` (or ``[payload]``): one record,
    the last frame decoded as UTF-8 (undecodable bytes become U+FFFD).

    >>> last_frame_as_text([b"prices", b"42"])
    ['42']
    """
    return [frames[-1].decode("utf-8", "replace")] if frames else []


def frames_as_bytes(frames: list[bytes]) -> list[list[bytes]]:
    """A ``bytesToObjects`` keeping each message whole: one record, the list of its frames.

    >>> frames_as_bytes([b"a", b"b"])
    [[b'a', b'b']]
    """
    return [frames]


def _prefixes(value: Any) -> tuple[bytes, ...]:
    if isinstance(value, (bytes, str)):
        value = [value]
    if not isinstance(value, Iterable):
        raise TypeError(f"subscribe must be a topic prefix (bytes or str) or a list of them, got "
                        f"{value!r:.80}")
    out = []
    for item in value:
        if isinstance(item, str):
            item = item.encode("utf-8")
        if not isinstance(item, bytes):
            raise TypeError(f"a subscription is a topic prefix, bytes or str, got {item!r:.80}")
        out.append(item)
    return tuple(out)


def _check_prefixes(_inst: Any, _attr: Any, value: tuple[bytes, ...]) -> None:
    if not value:
        raise ValueError("subscribe to at least one topic prefix (b'' subscribes to everything)")


def _check_url(_inst: Any, _attr: Any, value: Any) -> None:
    if not isinstance(value, str) or "://" not in value:
        raise ValueError(f"publisherUrl must be a ZeroMQ endpoint such as "
                         f"'tcp://127.0.0.1:5555', got {value!r:.100}")
    transport, _, address = value.partition("://")
    if transport not in _TRANSPORTS:
        raise ValueError(
            f"publisherUrl {value!r:.100}: the receiver's socket lives in its own ZeroMQ "
            f"context, so use tcp:// or ipc:// (not {transport}://)"
        )
    if not address:
        raise ValueError(f"publisherUrl {value!r:.100} names no address")


def _check_callable(_inst: Any, _attr: Any, value: Any) -> None:
    if not callable(value):
        raise TypeError(f"bytesToObjects must be a function from the list of a message's frames "
                        f"to an iterable of records, got {value!r:.80}")


def _check_positive_int(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attr.name} must be a whole number >= 0, got {value!r:.80}")


def _check_seconds(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{attr.name} must be a number of seconds >= 0, got {value!r:.80}")


def _check_storage_level(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, StorageLevel):
        raise TypeError(f"storageLevel must be an ember StorageLevel, got {value!r:.80}")


def _apply(bytes_to_objects: Callable[[list[bytes]], Iterable[Any]],
           messages: Iterable[list[bytes]]) -> Iterable[Any]:
    for frames in messages:
        yield from bytes_to_objects(frames)


@attrs.frozen
class ZeroMQSource(ReceiverSource):
    """A stream of the messages a ZeroMQ publisher (a ``PUB`` or ``XPUB`` socket) sends:
    :meth:`ZeroMQUtils.createStream <ember_zeromq.ZeroMQUtils.createStream>` or
    ``ssc.stream("zeromq", publisherUrl=..., subscribe=..., bytesToObjects=...)``.

    A ``SUB`` socket connects to the publisher and subscribes to topic prefixes. Each message
    is kept as the list of its frames (a multipart message has several);
    ``bytesToObjects(frames)`` turns one message into an iterable of records. It runs in the
    workers, in parallel — the receiver on the driver only gathers messages into blocks — so
    it must be picklable (a lambda is: functions travel with cloudpickle). Input statistics
    (``numRecords``) count messages.

    Delivery: **at most once**. Publish/subscribe in ZeroMQ has no acknowledgements: what a
    publisher sends while no subscriber is connected, or beyond the subscriber's high-water
    mark, is dropped by ZeroMQ, and a failure loses what was in flight.

    :param publisherUrl: the publisher's endpoint, ``tcp://host:port`` or ``ipc:///path``.
    :param subscribe: a topic prefix (``bytes`` or ``str``; ``b""`` for every message) or a
        list of them. ZeroMQ matches it against the start of a message's first frame.
    :param bytesToObjects: ``bytesToObjects(frames: list[bytes]) -> iterable of records``;
        :func:`last_frame_as_text` and :func:`frames_as_bytes` are ready-made.
    :param storageLevel: accepted for compatibility with Spark; blocks are kept serialized in
        the driver's memory until their batch is done.
    :param receiveHighWaterMark: messages ZeroMQ queues for the receiver at most (its
        ``RCVHWM``; beyond, the publisher drops them); 0 for no limit. Default 100 000.
    :param restartDelay: seconds before reconnecting after the publisher went away, doubled
        after each failure in a row and reset once a message arrives; default the
        application's ``ember.streaming.receiverRestartDelay``.
    :param maxRestartDelay: the longest wait between reconnections (default 30 s).

    >>> ZeroMQSource("tcp://127.0.0.1:5555", b"", last_frame_as_text).delivery.value
    'at-most-once'
    """

    name = "zeromq"
    delivery = Delivery.AT_MOST_ONCE

    publisherUrl: str = attrs.field(validator=_check_url)
    subscribe: tuple[bytes, ...] = attrs.field(converter=_prefixes, validator=_check_prefixes)
    bytesToObjects: Callable[[list[bytes]], Iterable[Any]] = attrs.field(
        validator=_check_callable)
    storageLevel: StorageLevel | None = attrs.field(default=None, kw_only=True,
                                                    validator=_check_storage_level)
    receiveHighWaterMark: int = attrs.field(default=100_000, kw_only=True,
                                            validator=_check_positive_int)
    restartDelay: float | None = attrs.field(default=None, kw_only=True,
                                             validator=_check_seconds)
    maxRestartDelay: float = attrs.field(default=30.0, kw_only=True, validator=_check_seconds)

    def restart_delay(self, failures: int, default: float = 2.0) -> float:
        """The wait before reconnecting after ``failures`` failures in a row (1 or more).

        >>> ZeroMQSource("tcp://h:1", b"", frames_as_bytes, restartDelay=0.5,
        ...              maxRestartDelay=3).restart_delay(4)
        3
        """
        first = self.restartDelay if self.restartDelay is not None else default
        return min(first * 2 ** max(failures - 1, 0), max(self.maxRestartDelay, first))

    def createReceiver(self) -> Receiver:
        """A new :class:`~ember_zeromq.ZeroMQReceiver` for one stream."""
        from ember_zeromq._receiver import ZeroMQReceiver

        return ZeroMQReceiver(self)

    def createStream(self, ssc: StreamingContext) -> DStream:
        """The receiver's stream of messages (frame lists), turned into records by
        ``bytesToObjects`` in the workers."""
        import functools

        messages = ssc.receiverStream(self.createReceiver())
        return messages.mapPartitions(functools.partial(_apply, self.bytesToObjects))
