"""The MQTT receiver: subscribe, gather messages into blocks, store, then acknowledge.

Each start of the receiver makes one :class:`_Session`: a paho client and two threads.

- The **network thread** connects, subscribes once the broker accepted the connection, and
  runs paho's network loop (``client.loop``). paho calls :meth:`_Session.on_message` in this
  thread for every message; it only appends the payload to the session's buffer (and, at
  QoS 1/2, the message id to the list of messages to acknowledge). Between two turns of the
  loop the thread sends the acknowledgements the block thread queued: every paho call is
  made by this one thread, as paho's non-threaded interface requires.
- The **block thread** wakes every ``ember.streaming.blockInterval`` — or at once when the
  buffer holds ``maxInflight`` unacknowledged messages — takes the buffer, stores it with one
  ``storeMany`` call (one block, one partition) and, once that returned (the block is
  stored, and logged when the write-ahead log is on), queues the acknowledgements of those
  messages for the network thread. paho runs in manual-acknowledgement mode, so a message
  the broker delivered but that was never stored is never acknowledged: with a persistent
  session the broker sends it again after a failure.

A lost connection, a refused connection or subscription, and a failed store are reported to
listeners and end in ``restart(...)`` after a backoff delay that doubles with each failure in
a row (reset once subscribed). ``onStop`` stops the network thread reading, joins both
threads, stores what the buffer still holds as a last block (``onStop`` may store, also during
the final stop, so a graceful stop processes it), acknowledges it, disconnects cleanly and
closes the socket: a stopped receiver leaves no thread and no socket behind.
"""

from __future__ import annotations

import collections
import logging
import ssl
import threading
import uuid
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from ember.receivers import Receiver
from ember.storagelevel import StorageLevel
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ember_mqtt._source import SESSION_NEVER_EXPIRES

if TYPE_CHECKING:
    from ember_mqtt._source import MQTTSource

__all__ = ["MQTTReceiver"]

log = logging.getLogger("ember_mqtt")

#: Seconds one turn of the network loop waits for data (bounds how long a stop waits).
_LOOP_S = 0.05
_PROTOCOLS = {3: mqtt.MQTTv31, 4: mqtt.MQTTv311, 5: mqtt.MQTTv5}


class _Failure(Exception):
    """Why a session ended: reported, then the receiver restarts."""


class _Session:
    """The runtime state of one start of a receiver (see the module documentation)."""

    def __init__(self, receiver: MQTTReceiver, block_interval: float) -> None:
        self.receiver = receiver
        self.source = receiver.source
        self.block_interval = block_interval
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)  # flush now / space in the buffer / halt
        self.buffer: list[Any] = []
        self.unacked: list[tuple[int, int]] = []  # (mid, qos) of the buffered messages
        self.flush_now = False
        self.acks: collections.deque[tuple[int, int]] = collections.deque()
        self.client: mqtt.Client | None = None
        self.connected = False
        self.subscribed = False
        self.failure: str | None = None  # set by callbacks: why the session must end
        self.network: threading.Thread | None = None
        self.blocks: threading.Thread | None = None
        self.max_inflight = self.source.maxInflight
        self.paired = self.source.paired
        self.max_buffered = self.source.maxBuffered

    # ------------------------------------------------------------------ paho callbacks
    # All of them run in the network thread, inside client.loop().
    def on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                   _properties: Any) -> None:
        if reason.is_failure:
            self.failure = f"the broker at {self.source.address} refused the connection: {reason}"
            return
        self.connected = True
        qos = self.source.qos
        result, _mid = client.subscribe([(topic, qos) for topic in self.source.topics])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.failure = f"could not subscribe: {mqtt.error_string(result)}"

    def on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int,
                     reasons: list[Any], _properties: Any) -> None:
        refused = [f"{topic!r}: {reason}" for topic, reason
                   in zip(self.source.topics, reasons, strict=False) if reason.is_failure]
        if refused:
            self.failure = (f"the broker at {self.source.address} refused the subscription "
                            f"to {', '.join(refused)}")
            return
        self.subscribed = True
        self.receiver._failures = 0

    def on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        record = (msg.topic, msg.payload) if self.paired else msg.payload
        with self.lock:
            self.buffer.append(record)
            if msg.qos:
                self.unacked.append((msg.mid, msg.qos))
                if len(self.unacked) >= self.max_inflight and not self.flush_now:
                    self.flush_now = True
                    self.wake.notify_all()

    def on_message_qos0(self, _client: mqtt.Client, _userdata: Any,
                        msg: mqtt.MQTTMessage) -> None:
        """``on_message`` of a QoS 0 subscription of payloads: nothing to acknowledge."""
        with self.lock:
            self.buffer.append(msg.payload)

    # ------------------------------------------------------------------ the network thread
    def run_network(self) -> None:
        try:
            self._connect_and_loop()
        except _Failure as failure:
            self.receiver._fail(str(failure), failure.__cause__)
        except Exception as exc:  # a bug or an unexpected paho error: still restart
            if not self.halt.is_set():
                self.receiver._fail(f"the MQTT client failed: {type(exc).__name__}: {exc}", exc)

    def _new_client(self) -> mqtt.Client:
        src = self.source
        address = src.address
        protocol = _PROTOCOLS[src.mqttVersion]
        kwargs: dict[str, Any] = {}
        if protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = src.cleanSession
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.receiver._client_id,
            protocol=protocol,
            transport=address.transport,
            manual_ack=src.qos > 0,
            reconnect_on_failure=False,
            **kwargs,
        )
        client.connect_timeout = src.connectionTimeout
        if address.transport == "websockets":
            client.ws_set_options(path=address.path)
        username = src.username if src.username is not None else address.username
        password = src.password if src.password is not None else address.password
        if username is not None or password is not None:
            client.username_pw_set(username, password)
        if src.use_tls:
            client.tls_set(ca_certs=src.caCerts, certfile=src.certFile, keyfile=src.keyFile,
                           cert_reqs=ssl.CERT_REQUIRED)
            if src.tlsInsecure:
                client.tls_insecure_set(True)
        client.on_connect = self.on_connect
        client.on_subscribe = self.on_subscribe
        # every message of a QoS 0 subscription comes at QoS 0: the lightest callback
        fast = src.qos == 0 and not src.paired
        client.on_message = self.on_message_qos0 if fast else self.on_message
        return client

    def _connect_and_loop(self) -> None:
        src = self.source
        client = self._new_client()
        with self.lock:
            if self.halt.is_set():
                return
            self.client = client
        address = src.address
        kwargs: dict[str, Any] = {}
        if src.mqttVersion == 5:
            props = Properties(PacketTypes.CONNECT)
            if not src.cleanSession:
                props.SessionExpiryInterval = src.sessionExpiry or SESSION_NEVER_EXPIRES
            props.ReceiveMaximum = src.maxInflight
            kwargs = {"clean_start": src.cleanSession, "properties": props}
        try:
            client.connect(address.host, address.port, src.keepAliveInterval, **kwargs)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise _Failure(f"could not connect to {address}: {type(exc).__name__}: {exc}") \
                from exc
        while not self.halt.is_set():
            rc = client.loop(_LOOP_S)
            if self.acks:
                self.send_acks()
            if self.halt.is_set():
                return
            if self.failure is not None:
                self.connected = False
                raise _Failure(self.failure)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                state = "the connection to" if self.connected else "connecting to"
                self.connected = False
                raise _Failure(f"lost {state} the broker at {address}: "
                               f"{mqtt.error_string(rc)}")
            if len(self.buffer) >= self.max_buffered:
                self._wait_for_space()

    def _wait_for_space(self) -> None:
        """Stop reading while the buffer is full (a rate limit or backpressure holds the
        block thread back); the broker then holds the messages."""
        with self.lock:
            while len(self.buffer) >= self.max_buffered and not self.halt.is_set():
                self.flush_now = True
                self.wake.notify_all()
                self.wake.wait(_LOOP_S)
        if self.acks:
            self.send_acks()

    def send_acks(self) -> None:
        """Acknowledge the messages whose block is stored (network thread, or onStop after
        the network thread ended)."""
        client = self.client
        while self.acks:
            mid, qos = self.acks.popleft()
            if client is not None and self.connected:
                client.ack(mid, qos)

    # ------------------------------------------------------------------ the block thread
    def run_blocks(self) -> None:
        try:
            while True:
                with self.lock:
                    self.wake.wait_for(lambda: self.flush_now or self.halt.is_set(),
                                       self.block_interval)
                    if self.halt.is_set():
                        return
                self.flush()
        except Exception as exc:
            if not self.halt.is_set():
                self.receiver._fail(
                    f"storing a block of messages failed, they will not be acknowledged: "
                    f"{type(exc).__name__}: {exc}", exc)

    def flush(self) -> None:
        """Store the buffered messages as one block, then queue their acknowledgements."""
        with self.lock:
            records, self.buffer = self.buffer, []
            unacked, self.unacked = self.unacked, []
            self.flush_now = False
            self.wake.notify_all()
        if records:
            self.receiver.storeMany(records)  # returns once stored (and logged)
            self.acks.extend(unacked)

    # ------------------------------------------------------------------ stopping
    def close(self) -> None:
        """End the session (from ``onStop``): stop both threads, store and acknowledge what
        is buffered, disconnect and close the socket."""
        with self.lock:
            self.halt.set()
            self.wake.notify_all()
        me = threading.current_thread()
        for thread in (self.network, self.blocks):
            if thread is not None and thread is not me:
                thread.join()
        try:
            self.flush()  # the last, partial block: onStop may store it
        except Exception as exc:  # stopped for good before it could be stored
            log.debug("MQTT receiver: the last %s messages were not stored: %s",
                      len(self.buffer), exc)
        client = self.client
        if client is None:
            return
        try:
            if self.connected:
                self.send_acks()
                client.disconnect()
        except Exception as exc:  # the connection may be gone already
            log.debug("MQTT receiver: disconnecting failed: %s", exc)
        finally:
            sock = client.socket()
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass


class MQTTReceiver(Receiver):
    """Receives the messages of an MQTT subscription (see :class:`~ember_mqtt.MQTTSource`).

    Records are payloads (``bytes``), or ``(topic, payload)`` pairs for a paired stream; the
    source's stream decodes them in the workers. The receiver is *reliable* at QoS 1 with a
    persistent session: it acknowledges a message only once the block holding it is stored.

    :param source: the :class:`~ember_mqtt.MQTTSource` configuration.
    """

    def __init__(self, source: MQTTSource) -> None:
        super().__init__(source.storageLevel or StorageLevel.MEMORY_AND_DISK_SER_2)
        self.source = source
        #: The guarantee of this receiver's configuration (see ``MQTTSource.delivery``).
        self.delivery = source.delivery
        self._client_id = source.clientId or f"ember-{uuid.uuid4().hex[:16]}"
        self._failures = 0
        self._session: _Session | None = None

    def __getstate__(self) -> dict[str, Any]:
        """The configuration only: the running session (client, threads, buffer) stays."""
        state = super().__getstate__()
        state["_session"] = None
        return state

    def name(self) -> str:
        """``MQTTReceiver(tcp://host:port, topics)``, for listeners and the UI."""
        return f"MQTTReceiver({self.source.address}, {', '.join(self.source.topics)})"

    @property
    def pending(self) -> int:
        """Messages received and not yet stored (0 when not running)."""
        session = self._session
        return len(session.buffer) if session is not None else 0

    # ------------------------------------------------------------------ lifecycle
    def onStart(self) -> None:
        """Start the network and block threads of a new session (returns at once)."""
        block_interval = self.conf.getDuration("ember.streaming.blockInterval", 0.2) or 0.2
        session = _Session(self, block_interval)
        self._session = session
        label = f"{self.source.address}#{self.streamId}"
        session.network = threading.Thread(target=session.run_network, daemon=True,
                                           name=f"ember-mqtt-network-{label}")
        session.blocks = threading.Thread(target=session.run_blocks, daemon=True,
                                          name=f"ember-mqtt-blocks-{label}")
        session.blocks.start()
        session.network.start()

    def onStop(self) -> None:
        """End the session: store and acknowledge what it holds, disconnect, join."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    # ------------------------------------------------------------------ failures
    def _fail(self, message: str, error: BaseException | None) -> None:
        """Report ``message`` and restart after the backoff delay."""
        if self.isStopped():
            return
        self._failures += 1
        default = self.conf.getDuration("ember.streaming.receiverRestartDelay", 2.0)
        delay = self.source.restart_delay(self._failures, 2.0 if default is None else default)
        self.restart(f"{message}; reconnecting in {delay:g} s", error, delay)
