"""``MQTTSource``: the configuration of an MQTT stream (no client, no thread)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import attrs
from ember.receivers import ReceiverSource
from ember.sources import Delivery
from ember.storagelevel import StorageLevel

if TYPE_CHECKING:
    from ember.receivers import Receiver
    from ember.streaming.context import StreamingContext
    from ember.streaming.dstream import DStream

__all__ = ["DEFAULT_MAX_INFLIGHT", "BrokerAddress", "MQTTSource"]

#: Unacknowledged QoS 1/2 messages a receiver holds at most before it stores them as a block.
DEFAULT_MAX_INFLIGHT = 1000
#: Messages a receiver holds at most, waiting to be stored, before it stops reading.
DEFAULT_MAX_BUFFERED = 100_000
#: The session expiry interval (MQTT 5) meaning "never expires".
SESSION_NEVER_EXPIRES = 0xFFFFFFFF

_SCHEMES = {
    # scheme: (transport, tls, default port)
    "tcp": ("tcp", False, 1883),
    "mqtt": ("tcp", False, 1883),
    "ssl": ("tcp", True, 8883),
    "tls": ("tcp", True, 8883),
    "mqtts": ("tcp", True, 8883),
    "ws": ("websockets", False, 80),
    "wss": ("websockets", True, 443),
}
_VERSIONS = (3, 4, 5)
_ERROR_POLICIES = ("replace", "strict")


@attrs.frozen
class BrokerAddress:
    """Where a broker listens, parsed from a broker URL such as ``tcp://localhost:1883``.

    :ivar transport: ``"tcp"`` or ``"websockets"``.
    :ivar tls: whether the URL's scheme asks for TLS (``ssl``, ``mqtts``, ``wss``).
    :ivar host: the host name or address.
    :ivar port: the TCP port.
    :ivar path: the websocket path (``/mqtt`` by default; unused over TCP).
    :ivar username: the user name given in the URL, if any.
    :ivar password: the password given in the URL, if any.
    """

    transport: str
    tls: bool
    host: str
    port: int
    path: str = "/mqtt"
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse a broker URL.

        >>> BrokerAddress.parse("tcp://broker.local:1884").port
        1884
        >>> BrokerAddress.parse("ssl://broker.local").port
        8883

        :raises ValueError: the URL has no supported scheme, no host or a bad port.
        """
        if not isinstance(url, str) or "://" not in url:
            raise ValueError(
                f"brokerUrl must be a URL such as 'tcp://localhost:1883' (schemes: "
                f"{', '.join(sorted(_SCHEMES))}), got {url!r:.100}"
            )
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(
                f"brokerUrl {url!r:.100}: unsupported scheme {parts.scheme!r}; use one of "
                f"{', '.join(sorted(_SCHEMES))} (tcp:// or mqtt:// plain, ssl:// or mqtts:// "
                f"with TLS, ws:// or wss:// over websockets)"
            )
        transport, tls, default_port = _SCHEMES[scheme]
        try:
            port = parts.port or default_port
        except ValueError:
            raise ValueError(f"brokerUrl {url!r:.100}: the port is not a number from 1 to "
                             f"65535") from None
        if not parts.hostname:
            raise ValueError(f"brokerUrl {url!r:.100} names no host")
        return cls(
            transport=transport, tls=tls, host=parts.hostname, port=port,
            path=parts.path or "/mqtt",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = {("tcp", False): "tcp", ("tcp", True): "ssl", ("websockets", False): "ws",
                  ("websockets", True): "wss"}[(self.transport, self.tls)]
        path = self.path if self.transport == "websockets" else ""
        return f"{scheme}://{host}:{self.port}{path}"


def _topics(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(value)
    raise TypeError(f"topics must be a topic string or a list of them, got {value!r:.80}")


def _check_topics(_inst: Any, _attr: Any, value: tuple[Any, ...]) -> None:
    if not value:
        raise ValueError("an MQTT stream needs at least one topic to subscribe to")
    for topic in value:
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"a topic filter must be a non-empty string, got {topic!r:.80}")
        levels = topic.split("/")
        for i, level in enumerate(levels):
            if "#" in level and (level != "#" or i != len(levels) - 1):
                raise ValueError(
                    f"topic filter {topic!r:.80}: '#' must be a whole level and the last one "
                    f"(as in 'sensors/#')"
                )
            if "+" in level and level != "+":
                raise ValueError(
                    f"topic filter {topic!r:.80}: '+' must be a whole level (as in 'a/+/c')"
                )
        if "\x00" in topic:
            raise ValueError(f"topic filter {topic!r:.80} contains a NUL character")


def _check_url(_inst: Any, _attr: Any, value: Any) -> None:
    BrokerAddress.parse(value)


def _check_qos(_inst: Any, _attr: Any, value: Any) -> None:
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError(f"qos must be 0, 1 or 2, got {value!r:.80}")


def _check_version(_inst: Any, _attr: Any, value: Any) -> None:
    if isinstance(value, bool) or value not in _VERSIONS:
        raise ValueError(
            f"mqttVersion must be 3 (MQTT 3.1), 4 (MQTT 3.1.1) or 5 (MQTT 5), got {value!r:.80}"
        )


def _check_positive_int(limit: int | None = None) -> Any:
    def check(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (
            limit is not None and value > limit
        ):
            upto = f" up to {limit}" if limit is not None else ""
            raise ValueError(f"{attr.name} must be a whole number from 1{upto}, got "
                             f"{value!r:.80}")

    return check


def _check_seconds(positive: bool) -> Any:
    def check(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            value > 0 if positive else value >= 0
        )
        if not ok:
            bound = "positive" if positive else "zero or positive"
            raise ValueError(f"{attr.name} must be a {bound} number of seconds, got "
                             f"{value!r:.80}")

    return check


def _check_optional_str(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{attr.name} must be a string or None, got {type(value).__name__}")


def _check_storage_level(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, StorageLevel):
        raise TypeError(f"storageLevel must be an ember StorageLevel, got {value!r:.80}")


def _check_errors(_inst: Any, _attr: Any, value: Any) -> None:
    if value not in _ERROR_POLICIES:
        raise ValueError(
            f"errors must be 'replace' (undecodable bytes become U+FFFD) or 'strict' (the "
            f"batch fails with UnicodeDecodeError), got {value!r:.80}"
        )


def _check_encoding(_inst: Any, _attr: Any, value: Any) -> None:
    if value is None:
        return
    import codecs

    try:
        codecs.lookup(value)
    except (LookupError, TypeError):
        raise ValueError(
            f"encoding must be a text encoding such as 'utf-8', or None for the raw bytes, "
            f"got {value!r:.80}"
        ) from None


class _DeliveryByOptions:
    """``delivery``: at least once on the class (the best this source gives); on an instance,
    at least once only at QoS 1 with a persistent session, else at most once."""

    def __get__(self, obj: Any, owner: Any = None) -> Delivery:
        if obj is None:
            return Delivery.AT_LEAST_ONCE
        if obj.qos == 1 and not obj.cleanSession:
            return Delivery.AT_LEAST_ONCE
        return Delivery.AT_MOST_ONCE


def _decode_payloads(encoding: str, errors: str, payloads: Iterable[bytes]) -> list[str]:
    return [p.decode(encoding, errors) for p in payloads]


def _decode_paired(encoding: str, errors: str,
                   pairs: Iterable[tuple[str, bytes]]) -> list[tuple[str, str]]:
    return [(t, p.decode(encoding, errors)) for t, p in pairs]


@attrs.frozen
class MQTTSource(ReceiverSource):
    """A stream of the messages an MQTT broker publishes on some topics:
    :meth:`MQTTUtils.createStream <ember_mqtt.MQTTUtils.createStream>`,
    ``createPairedStream``, or ``ssc.stream("mqtt", brokerUrl=..., topics=...)``.

    Records are the messages' payloads decoded as text (``encoding``; ``None`` keeps the
    bytes), or ``(topic, payload)`` pairs with ``paired=True``. Decoding happens in the
    workers: the receiver only gathers payloads into blocks.

    Delivery (``delivery``): **at least once** at ``qos=1`` with a persistent session
    (``cleanSession=False`` and a fixed ``clientId``): the receiver acknowledges a message to
    the broker only after the block holding it is stored (and written to the write-ahead log
    when it is on), so the broker sends again whatever a failure cut off. Otherwise **at most
    once**: at QoS 0 nothing is acknowledged, a clean session forgets what was in flight, and
    at QoS 2 paho keeps no record of a message between its two handshakes across a restart.

    :param brokerUrl: the broker, ``tcp://host:1883`` (also ``mqtt://``), ``ssl://host:8883``
        (also ``mqtts://``, TLS), ``ws://host:80/mqtt`` or ``wss://`` (websockets). A user and
        password in the URL (``tcp://user:secret@host``) are used when ``username`` and
        ``password`` are not given.
    :param topics: a topic filter (``"sensors/+/temperature"``, ``"logs/#"``) or a list.
    :param paired: records are ``(topic, payload)`` pairs (``createPairedStream``).
    :param storageLevel: accepted for compatibility with Spark; blocks are kept serialized in
        the driver's memory until their batch is done.
    :param qos: the subscription's quality of service, 0, 1 (default) or 2.
    :param clientId: the MQTT client id; default a random ``ember-…`` id. A persistent
        session needs a fixed one.
    :param cleanSession: start a new session on every connection (default, Spark's default)
        or resume the broker's session of ``clientId`` (``False``): the subscription and the
        messages not yet acknowledged survive reconnections and restarts.
    :param sessionExpiry: MQTT 5: seconds the broker keeps a persistent session after a
        disconnection (default: never expires).
    :param username: the user name, if the broker asks for one.
    :param password: the password (left out of ``repr``).
    :param tls: use TLS (default: as the URL's scheme says).
    :param caCerts: a file of CA certificates to trust (default: the system's).
    :param certFile: a client certificate file, for brokers that ask for one.
    :param keyFile: the client certificate's private key file.
    :param tlsInsecure: do not check the broker's host name against its certificate (tests
        only).
    :param mqttVersion: 3 (MQTT 3.1), 4 (3.1.1) or 5 (MQTT 5, default).
    :param keepAliveInterval: seconds between keep-alive pings (default 60).
    :param connectionTimeout: seconds one connection attempt may take (default 10).
    :param maxInflight: unacknowledged QoS 1/2 messages the receiver holds at most: when it
        holds that many it stores them as a block at once, without waiting for the block
        interval; with MQTT 5 it also asks the broker to send no more than that ahead of the
        acknowledgements (Receive Maximum). Brokers keep their own limit (mosquitto's
        ``max_inflight_messages``, 20 by default): reliable throughput is about that limit
        per block interval, so raise it on the broker (see the README).
    :param maxBuffered: messages the receiver holds at most waiting to be stored; beyond it
        the receiver stops reading until a block is stored (a rate limit or backpressure
        then slows the broker instead of filling memory).
    :param encoding: how payloads become text (default ``"utf-8"``); ``None`` for ``bytes``.
    :param errors: ``"replace"`` (default: undecodable bytes become U+FFFD) or ``"strict"``
        (the batch's task fails with :class:`UnicodeDecodeError`).
    :param restartDelay: seconds before the first reconnection after a failure, doubled after
        each failure in a row and reset once connected; default the application's
        ``ember.streaming.receiverRestartDelay``.
    :param maxRestartDelay: the longest wait between reconnections (default 30 s).

    >>> MQTTSource("tcp://localhost:1883", "sensors/#").delivery.value
    'at-most-once'
    >>> MQTTSource("tcp://localhost:1883", "sensors/#", clientId="ingest",
    ...            cleanSession=False).delivery.value
    'at-least-once'
    """

    name = "mqtt"
    delivery = _DeliveryByOptions()

    brokerUrl: str = attrs.field(validator=_check_url)
    topics: tuple[str, ...] = attrs.field(converter=_topics, validator=_check_topics)
    paired: bool = attrs.field(default=False, kw_only=True,
                               validator=attrs.validators.instance_of(bool))
    storageLevel: StorageLevel | None = attrs.field(default=None, kw_only=True,
                                                    validator=_check_storage_level)
    qos: int = attrs.field(default=1, kw_only=True, validator=_check_qos)
    clientId: str | None = attrs.field(default=None, kw_only=True,
                                       validator=_check_optional_str)
    cleanSession: bool = attrs.field(default=True, kw_only=True,
                                     validator=attrs.validators.instance_of(bool))
    sessionExpiry: int | None = attrs.field(
        default=None, kw_only=True,
        validator=attrs.validators.optional(_check_positive_int(SESSION_NEVER_EXPIRES)),
    )
    username: str | None = attrs.field(default=None, kw_only=True,
                                       validator=_check_optional_str)
    password: str | None = attrs.field(default=None, kw_only=True, repr=False,
                                       validator=_check_optional_str)
    tls: bool | None = attrs.field(
        default=None, kw_only=True,
        validator=attrs.validators.optional(attrs.validators.instance_of(bool)),
    )
    caCerts: str | None = attrs.field(default=None, kw_only=True, validator=_check_optional_str)
    certFile: str | None = attrs.field(default=None, kw_only=True,
                                       validator=_check_optional_str)
    keyFile: str | None = attrs.field(default=None, kw_only=True, validator=_check_optional_str)
    tlsInsecure: bool = attrs.field(default=False, kw_only=True,
                                    validator=attrs.validators.instance_of(bool))
    mqttVersion: int = attrs.field(default=5, kw_only=True, validator=_check_version)
    keepAliveInterval: int = attrs.field(default=60, kw_only=True,
                                         validator=_check_positive_int(65535))
    connectionTimeout: float = attrs.field(default=10.0, kw_only=True,
                                           validator=_check_seconds(True))
    maxInflight: int = attrs.field(default=DEFAULT_MAX_INFLIGHT, kw_only=True,
                                   validator=_check_positive_int(65535))
    maxBuffered: int = attrs.field(default=DEFAULT_MAX_BUFFERED, kw_only=True,
                                   validator=_check_positive_int())
    encoding: str | None = attrs.field(default="utf-8", kw_only=True, validator=_check_encoding)
    errors: str = attrs.field(default="replace", kw_only=True, validator=_check_errors)
    restartDelay: float | None = attrs.field(
        default=None, kw_only=True, validator=attrs.validators.optional(_check_seconds(False))
    )
    maxRestartDelay: float = attrs.field(default=30.0, kw_only=True,
                                         validator=_check_seconds(False))

    def __attrs_post_init__(self) -> None:
        if not self.cleanSession and not self.clientId:
            raise ValueError(
                "cleanSession=False resumes the broker's session of a client id: give a fixed "
                "clientId too (a random one would start a new session every time)"
            )
        if self.keyFile is not None and self.certFile is None:
            raise ValueError("keyFile is the key of a client certificate: give certFile too")
        if self.sessionExpiry is not None and self.mqttVersion != 5:
            raise ValueError("sessionExpiry is an MQTT 5 setting: use mqttVersion=5")

    # ------------------------------------------------------------------ derived settings
    @property
    def address(self) -> BrokerAddress:
        """The parsed :attr:`brokerUrl`."""
        return BrokerAddress.parse(self.brokerUrl)

    @property
    def use_tls(self) -> bool:
        """Whether connections use TLS (``tls``, else the URL's scheme)."""
        return self.address.tls if self.tls is None else self.tls

    def restart_delay(self, failures: int, default: float = 2.0) -> float:
        """The wait before reconnecting after ``failures`` failures in a row (1 or more).

        :param default: the first delay when ``restartDelay`` is ``None``.

        >>> MQTTSource("tcp://h", "t", restartDelay=0.5, maxRestartDelay=3).restart_delay(4)
        3
        """
        first = self.restartDelay if self.restartDelay is not None else default
        longest = max(self.maxRestartDelay, first)
        return min(first * 2 ** max(failures - 1, 0), longest)

    # ------------------------------------------------------------------ making streams
    def createReceiver(self) -> Receiver:
        """A new :class:`~ember_mqtt.MQTTReceiver` for one stream."""
        from ember_mqtt._receiver import MQTTReceiver

        return MQTTReceiver(self)

    def createStream(self, ssc: StreamingContext) -> DStream:
        """The stream of this source: the receiver's stream of payloads, decoded in the
        workers when ``encoding`` is set."""
        stream = ssc.receiverStream(self.createReceiver())
        if self.encoding is None:
            return stream
        decode = _decode_paired if self.paired else _decode_payloads
        return stream.mapPartitions(functools.partial(decode, self.encoding, self.errors))
