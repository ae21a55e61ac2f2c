"""The ``mqtt`` source for ember: ``MQTTUtils.createStream(ssc, brokerUrl, topic)``,
``MQTTUtils.createPairedStream(ssc, brokerUrl, topics)`` and ``ssc.stream("mqtt", ...)``.

A receiver subscribes to an MQTT broker with paho-mqtt, gathers the messages into blocks and
stores one block per block interval. At QoS 1 with a persistent session it is *reliable*: a
message is acknowledged to the broker only after its block is stored, so a failure loses
nothing the broker delivered. Connections lost or refused are reported to listeners and
retried with an exponential backoff. See :class:`MQTTSource` for every option and
:mod:`ember_mqtt.testing` for a Mosquitto broker to test against.
"""

from __future__ import annotations

from ember_mqtt._receiver import MQTTReceiver
from ember_mqtt._source import DEFAULT_MAX_BUFFERED, DEFAULT_MAX_INFLIGHT, BrokerAddress, MQTTSource
from ember_mqtt._utils import MQTTUtils

__all__ = [
    "DEFAULT_MAX_BUFFERED",
    "DEFAULT_MAX_INFLIGHT",
    "BrokerAddress",
    "MQTTReceiver",
    "MQTTSource",
    "MQTTUtils",
]
