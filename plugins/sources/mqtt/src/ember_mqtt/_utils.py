"""``MQTTUtils``: Spark's entry points to MQTT streams."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ember.storagelevel import StorageLevel

from ember_mqtt._source import MQTTSource

if TYPE_CHECKING:
    from ember.streaming.context import StreamingContext
    from ember.streaming.dstream import DStream

__all__ = ["MQTTUtils"]


class MQTTUtils:
    """Make DStreams from an MQTT broker, as Spark's (and PySpark 1.x's) ``MQTTUtils`` does.

    Options beyond Spark's arguments (``qos``, ``clientId``, ``cleanSession``, ``username``,
    ``password``, TLS files, ``mqttVersion``, …) are keywords, described at
    :class:`~ember_mqtt.MQTTSource`.
    """

    @staticmethod
    def createStream(ssc: StreamingContext, brokerUrl: str, topic: str,
                     storageLevel: StorageLevel = StorageLevel.MEMORY_AND_DISK_SER_2,
                     **options: Any) -> DStream:
        """A stream of the messages published on ``topic``: their payloads, decoded as UTF-8.

        :param ssc: the streaming context.
        :param brokerUrl: the broker, e.g. ``tcp://localhost:1883`` or ``ssl://host:8883``.
        :param topic: the topic filter to subscribe to (wildcards ``+`` and ``#`` allowed).
        :param storageLevel: accepted for compatibility; blocks are kept serialized.
        :param options: further :class:`~ember_mqtt.MQTTSource` options.
        :returns: a DStream of ``str`` (``bytes`` with ``encoding=None``).
        """
        source = MQTTSource(brokerUrl, topic, storageLevel=storageLevel, **options)
        return source.createStream(ssc)

    @staticmethod
    def createPairedStream(ssc: StreamingContext, brokerUrl: str, topics: Iterable[str],
                           storageLevel: StorageLevel = StorageLevel.MEMORY_AND_DISK_SER_2,
                           **options: Any) -> DStream:
        """A stream of ``(topic, message)`` pairs of the messages published on ``topics``.

        :param ssc: the streaming context.
        :param brokerUrl: the broker, e.g. ``tcp://localhost:1883``.
        :param topics: the topic filters to subscribe to.
        :param storageLevel: accepted for compatibility; blocks are kept serialized.
        :param options: further :class:`~ember_mqtt.MQTTSource` options.
        :returns: a DStream of ``(topic, message)`` tuples of ``str``.
        """
        if isinstance(topics, str):
            topics = [topics]
        source = MQTTSource(brokerUrl, list(topics), paired=True, storageLevel=storageLevel,
                            **options)
        return source.createStream(ssc)
