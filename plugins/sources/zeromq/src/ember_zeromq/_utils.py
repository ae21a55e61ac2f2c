"""``ZeroMQUtils``: Spark's entry point to ZeroMQ streams."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ember.storagelevel import StorageLevel

from ember_zeromq._source import ZeroMQSource

if TYPE_CHECKING:
    from ember.streaming.context import StreamingContext
    from ember.streaming.dstream import DStream

__all__ = ["ZeroMQUtils"]


class ZeroMQUtils:
    """Make DStreams from a ZeroMQ publisher, as Spark's ``ZeroMQUtils`` does."""

    @staticmethod
    def createStream(ssc: StreamingContext, publisherUrl: str,
                     subscribe: bytes | str | Iterable[bytes | str],
                     bytesToObjects: Callable[[list[bytes]], Iterable[Any]],
                     storageLevel: StorageLevel = StorageLevel.MEMORY_AND_DISK_SER_2,
                     **options: Any) -> DStream:
        """A stream of the records ``bytesToObjects`` makes of each message a publisher sends.

        :param ssc: the streaming context.
        :param publisherUrl: the publisher's endpoint, e.g. ``tcp://127.0.0.1:5555``.
        :param subscribe: the topic prefix(es) to subscribe to (``b""``: every message).
        :param bytesToObjects: ``bytesToObjects(frames)`` turns the list of a message's frames
            (``bytes``; several for a multipart message) into an iterable of records. It runs
            in the workers.
        :param storageLevel: accepted for compatibility; blocks are kept serialized.
        :param options: further :class:`~ember_zeromq.ZeroMQSource` options.
        :returns: a DStream of whatever ``bytesToObjects`` yields.
        """
        source = ZeroMQSource(publisherUrl, subscribe, bytesToObjects,
                              storageLevel=storageLevel, **options)
        return source.createStream(ssc)
