"""ember-mqtt's behaviour, end to end against real Mosquitto brokers on 127.0.0.1 started by
the tests: decoding and pairing, reliability (acknowledged only once stored), broker restarts
and outages, authentication, TLS, websockets, flow control."""

from __future__ import annotations

import pickle
import socket
import subprocess
import threading
import time

import pytest
from ember.plugins import load_component
from ember.sources import Delivery
from ember_mqtt import BrokerAddress, MQTTReceiver, MQTTSource, MQTTUtils
from ember_mqtt.testing import MosquittoBroker, create_session, publish

#: Seconds any wait of these tests may take at most.
WAIT = 20.0


def _texts(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}-{i}" for i in range(start, start + n)]


# --------------------------------------------------------------------------- the plugin


def test_the_mqtt_entry_point_is_the_mqtt_source():
    assert load_component("sources", "mqtt") is MQTTSource
    assert MQTTSource.delivery is Delivery.AT_LEAST_ONCE, "the listing shows the best it gives"


@pytest.mark.parametrize(
    ("options", "delivery"),
    [
        ({}, Delivery.AT_MOST_ONCE),  # Spark's defaults: QoS 1, clean session
        ({"qos": 0, "clientId": "c", "cleanSession": False}, Delivery.AT_MOST_ONCE),
        ({"qos": 1, "clientId": "c", "cleanSession": False}, Delivery.AT_LEAST_ONCE),
        ({"qos": 2, "clientId": "c", "cleanSession": False}, Delivery.AT_MOST_ONCE),
    ],
)
def test_an_instance_declares_the_guarantee_of_its_options(options, delivery):
    source = MQTTSource("tcp://localhost:1883", "t", **options)
    assert source.delivery is delivery
    assert source.createReceiver().delivery is delivery


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"brokerUrl": "localhost:1883"}, ValueError, "tcp://localhost:1883"),
        ({"brokerUrl": "http://localhost"}, ValueError, "unsupported scheme"),
        ({"brokerUrl": "tcp://:1883"}, ValueError, "names no host"),
        ({"brokerUrl": "tcp://h:99999"}, ValueError, "port"),
        ({"topics": []}, ValueError, "at least one topic"),
        ({"topics": "a/#/b"}, ValueError, "'#' must be a whole level and the last"),
        ({"topics": "a/b+"}, ValueError, "'+' must be a whole level"),
        ({"topics": 7}, TypeError, "topics"),
        ({"qos": 3}, ValueError, "qos must be 0, 1 or 2"),
        ({"cleanSession": False}, ValueError, "give a fixed clientId"),
        ({"mqttVersion": 6}, ValueError, "mqttVersion"),
        ({"mqttVersion": 4, "sessionExpiry": 60}, ValueError, "MQTT 5"),
        ({"maxInflight": 0}, ValueError, "maxInflight"),
        ({"maxInflight": 70000}, ValueError, "maxInflight"),
        ({"encoding": "no-such-codec"}, ValueError, "encoding"),
        ({"errors": "ignore"}, ValueError, "'replace'"),
        ({"keyFile": "k.pem"}, ValueError, "certFile"),
        ({"connectionTimeout": 0}, ValueError, "connectionTimeout"),
        ({"storageLevel": "MEMORY"}, TypeError, "StorageLevel"),
    ],
)
def test_bad_options_are_refused_when_the_stream_is_made(options, error, words):
    kwargs = {"brokerUrl": "tcp://localhost:1883", "topics": "t", **options}
    with pytest.raises(error, match=words.replace("+", r"\+")):
        MQTTSource(**kwargs)


def test_broker_urls():
    assert BrokerAddress.parse("tcp://h") == BrokerAddress("tcp", False, "h", 1883)
    assert BrokerAddress.parse("mqtts://h").port == 8883
    ws = BrokerAddress.parse("wss://h:9443/ws")
    assert (ws.transport, ws.tls, ws.port, ws.path) == ("websockets", True, 9443, "/ws")
    auth = BrokerAddress.parse("tcp://us%40er:p%3Ass@[::1]:1884")
    assert (auth.username, auth.password, auth.host, str(auth)) == (
        "us@er", "p:ss", "::1", "tcp://[::1]:1884")
    assert "p:ss" not in repr(auth)


def test_the_password_stays_out_of_repr_and_the_source_pickles():
    source = MQTTSource("tcp://localhost:1883", ["a", "b/#"], password="hunter2", qos=0)
    assert "hunter2" not in repr(source)
    assert pickle.loads(pickle.dumps(source)) == source
    assert source.topics == ("a", "b/#")


# --------------------------------------------------------------------------- records


def test_create_stream_gives_decoded_text_in_order(broker, stream_test):
    t = stream_test()
    stream = MQTTUtils.createStream(t.ssc, broker.url, "sensors/+/temp", clientId="texts",
                                    cleanSession=False)
    t.collect(stream)
    create_session(broker.url, "texts", "sensors/+/temp")
    t.start()
    sent = [*_texts("ünï", 300), "", "a\nb"]
    publish(broker.url, "sensors/1/temp", sent, qos=1)
    publish(broker.url, "sensors/1/humidity", ["not subscribed"], qos=1)
    publish(broker.url, "sensors/2/temp", [b"\xff\xfe bad utf-8"], qos=1)
    t.run_until(lambda: len(t.records()) >= len(sent) + 1, "every message")
    assert t.records() == [*sent, "\ufffd\ufffd bad utf-8"]


def test_paired_streams_give_topic_and_message_and_raw_bytes_without_encoding(
        broker, stream_test):
    t = stream_test()
    pairs = MQTTUtils.createPairedStream(t.ssc, broker.url, ["a/#", "b"], qos=0)
    raw = t.ssc.stream("mqtt", brokerUrl=broker.url, topics="b", encoding=None, qos=0)
    kept_raw: list[bytes] = []
    raw.foreachRDD(lambda rdd: kept_raw.extend(rdd.collect()))
    t.collect(pairs)
    t.start()
    t.events.wait(lambda: len(t.events.started) == 2, "both receivers started")
    want = {("a/x", "1"), ("a/y/z", "2"), ("b", "3")}
    deadline = time.monotonic() + WAIT
    while not want <= set(t.records()) or b"3" not in kept_raw:
        # QoS 0 and clean sessions: resend until both subscriptions are in place
        assert time.monotonic() < deadline, f"got {t.records()} and {kept_raw}"
        for topic, message in want:
            publish(broker.url, topic, [message], qos=0)
        t.run_until(lambda: True, "a batch")
    assert all(isinstance(r, bytes) for r in kept_raw)
    assert all(isinstance(m, str) for _, m in t.records())


# --------------------------------------------------------------------------- reliability


class _FailingFirstStore(MQTTReceiver):
    """An MQTT receiver whose first block cannot be stored (as a failing write-ahead log)."""

    failed = 0

    def storeMany(self, items):
        if type(self).failed == 0:
            type(self).failed += 1
            raise OSError("the disk is full")
        super().storeMany(items)


def test_a_message_is_acknowledged_only_after_its_block_is_stored(broker, stream_test):
    source = MQTTSource(broker.url, "reliable", clientId="reliable", cleanSession=False,
                        encoding=None)
    create_session(broker.url, "reliable", "reliable")
    sent = _texts("r", 200)
    publish(broker.url, "reliable", sent, qos=1)  # waiting in the session
    t = stream_test()
    _FailingFirstStore.failed = 0
    t.collect(t.ssc.receiverStream(_FailingFirstStore(source)))
    t.start()
    # The first block fails: none of its messages was acknowledged, so the broker sends them
    # again to the restarted receiver (an eager acknowledgement would lose them).
    got = t.run_until_records({s.encode() for s in sent})
    assert _FailingFirstStore.failed == 1
    assert any("storing a block of messages failed" in m and "the disk is full" in m
               for m in t.events.error_messages())
    assert len(t.events.started) >= 2
    assert {g.decode() for g in got} == set(sent)


def test_graceful_stop_stores_the_last_partial_block_and_acknowledges_it(broker, stream_test):
    create_session(broker.url, "last-block", "lb")
    first = stream_test(ember_streaming_blockInterval="30s")  # no block is cut by time
    source = MQTTSource(broker.url, "lb", clientId="last-block", cleanSession=False)
    stream = source.createStream(first.ssc)
    first.collect(stream)
    first.start()
    sent = _texts("lb", 50)
    publish(broker.url, "lb", sent, qos=1)
    receiver = first.ssc._graph.inputs[0].receiver
    deadline = time.monotonic() + WAIT
    while receiver.pending < 50:
        assert time.monotonic() < deadline, f"{receiver.pending} messages held"
        time.sleep(0.01)
    assert first.records() == []
    first.stop(graceful=True)
    assert first.records() == sent, "the last block is stored from onStop and processed"
    # They were acknowledged: the broker does not send them again to the next receiver.
    second = stream_test()
    second.collect(MQTTSource(broker.url, "lb", clientId="last-block",
                              cleanSession=False).createStream(second.ssc))
    second.start()
    publish(broker.url, "lb", ["after"], qos=1)
    assert second.run_until_records({"after"}) == ["after"]


def test_a_broker_restart_mid_stream_loses_nothing(broker, stream_test):
    create_session(broker.url, "restarts", "rs")
    t = stream_test()
    t.collect(MQTTSource(broker.url, "rs", clientId="restarts",
                         cleanSession=False).createStream(t.ssc))
    t.start()
    before = _texts("rs", 100)
    publish(broker.url, "rs", before, qos=1)
    t.run_until_records(set(before))

    during = _texts("rs", 100, 100)
    publisher = threading.Thread(  # publishes while the broker goes down and comes back
        target=lambda: [publish(broker.url, "rs", during[i:i + 10], qos=1, timeout=WAIT)
                        for i in range(0, 100, 10)])
    publisher.start()
    broker.restart()
    publisher.join(WAIT)
    after = _texts("rs", 100, 200)
    publish(broker.url, "rs", after, qos=1)
    got = t.run_until_records(set(before + during + after))
    assert set(got) == set(before + during + after)
    assert any("lost the connection to the broker" in m for m in t.events.error_messages())
    assert len(t.events.started) >= 2


def test_an_outage_is_reported_with_a_growing_backoff_and_ends_when_the_broker_is_back(
        broker, stream_test):
    create_session(broker.url, "outage", "out")
    t = stream_test()
    t.collect(MQTTSource(broker.url, "out", clientId="outage", cleanSession=False,
                         restartDelay=0.05, maxRestartDelay=0.4).createStream(t.ssc))
    t.start()
    publish(broker.url, "out", ["first"], qos=1)
    t.run_until_records({"first"})
    broker.stop()
    t.events.wait(lambda: len(t.events.errors) >= 5, "five failures")
    delays = [m.rsplit("reconnecting in ", 1)[1] for m in t.events.error_messages()]
    assert delays[:5] == ["0.05 s", "0.1 s", "0.2 s", "0.4 s", "0.4 s"]
    assert any("could not connect to tcp://127.0.0.1" in m and "ConnectionRefusedError" in m
               for m in t.events.error_messages())
    broker.start()
    publish(broker.url, "out", ["back"], qos=1)
    assert t.run_until_records({"first", "back"})[-1] == "back"


def test_a_broker_that_is_not_there_yet_is_retried_until_it_starts(tmp_path, stream_test):
    late = MosquittoBroker(directory=tmp_path / "late")
    try:
        t = stream_test()
        t.collect(MQTTSource(late.url, "late", qos=1).createStream(t.ssc))
        t.start()
        t.events.wait(lambda: len(t.events.errors) >= 2, "failed connection attempts")
        late.start()
        deadline = time.monotonic() + WAIT
        while "hello" not in t.records():  # clean session: resend until subscribed
            assert time.monotonic() < deadline, t.events.error_messages()
            publish(late.url, "late", ["hello"], qos=1)
            t.run_until(lambda: True, "a batch")
    finally:
        late.close()


# --------------------------------------------------------------------------- connections


def test_username_and_password_are_sent_and_a_refusal_is_reported(brokers, tmp_path,
                                                                   stream_test):
    passwords = tmp_path / "passwords"
    passwords.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "ember", "s3cret"], check=True,
                   capture_output=True, timeout=30)
    broker = brokers(allow_anonymous=False, conf_lines=[f"password_file {passwords}"])

    t = stream_test()
    wrong = MQTTSource(broker.url, "auth", username="ember", password="wrong", qos=0)
    t.collect(wrong.createStream(t.ssc))
    right = MQTTSource(f"tcp://ember:s3cret@127.0.0.1:{broker.port}", "auth", qos=0)
    t.collect(right.createStream(t.ssc))
    t.start()
    t.events.wait(lambda: any("refused the connection" in m for m in t.events.error_messages()),
                  "the refusal")
    refusal = next(m for m in t.events.error_messages() if "refused the connection" in m)
    assert "Not authorized" in refusal or "Bad user name or password" in refusal
    deadline = time.monotonic() + WAIT
    while "secret message" not in t.records():
        assert time.monotonic() < deadline, t.events.error_messages()
        publish(broker.url, "auth", ["secret message"], qos=0, username="ember",
                password="s3cret")
        t.run_until(lambda: True, "a batch")


class _RefusingBroker:
    """A minimal MQTT 3.1.1 server on 127.0.0.1 that accepts connections and refuses every
    subscription (SUBACK 0x80), as a broker whose ACL denies the topic does."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _read_packet(conn: socket.socket) -> tuple[int, bytes]:
        def exactly(n: int) -> bytes:
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                if not chunk:
                    raise ConnectionError("closed")
                data += chunk
            return data

        kind = exactly(1)[0]
        length, shift = 0, 0
        while True:
            byte = exactly(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return kind, exactly(length)

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(WAIT)
                try:
                    self._read_packet(conn)  # CONNECT
                    conn.sendall(b"\x20\x02\x00\x00")  # CONNACK: accepted
                    kind, body = self._read_packet(conn)
                    assert kind & 0xF0 == 0x80, kind  # SUBSCRIBE
                    conn.sendall(b"\x90\x03" + body[:2] + b"\x80")  # SUBACK: refused
                    while self._read_packet(conn):  # until the client goes
                        pass
                except (ConnectionError, OSError):
                    pass

    def close(self) -> None:
        self.closed.set()
        self.thread.join(WAIT)
        self.listener.close()


def test_a_refused_subscription_is_reported_and_retried(stream_test):
    server = _RefusingBroker()
    try:
        t = stream_test()
        t.collect(MQTTSource(f"tcp://127.0.0.1:{server.port}", "secret/#", mqttVersion=4,
                             restartDelay=0.05).createStream(t.ssc))
        t.start()
        t.events.wait(lambda: sum("refused the subscription" in m
                                  for m in t.events.error_messages()) >= 2, "two refusals")
        message = next(m for m in t.events.error_messages() if "refused the subscription" in m)
        assert "'secret/#'" in message and "tcp://127.0.0.1" in message
        t.stop()
    finally:
        server.close()


def _make_certificates(directory) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1, made with the openssl program."""
    d = str(directory)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    run("req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt", "-days", "2",
        "-subj", "/CN=ember test CA")
    run("req", *ec, "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr",
        "-subj", "/CN=127.0.0.1")
    with open(f"{d}/san.ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-out", f"{d}/server.crt", "-days", "2", "-extfile", f"{d}/san.ext")
    return {"ca": f"{d}/ca.crt", "cert": f"{d}/server.crt", "key": f"{d}/server.key"}


def test_tls_connections_check_the_broker_certificate(brokers, tmp_path, stream_test):
    certs = _make_certificates(tmp_path)
    from ember.testing import free_port

    tls_port = free_port()
    broker = brokers(conf_lines=[f"listener {tls_port} 127.0.0.1", f"cafile {certs['ca']}",
                                 f"certfile {certs['cert']}", f"keyfile {certs['key']}"])
    t = stream_test()
    trusted = MQTTSource(f"ssl://127.0.0.1:{tls_port}", "tls", caCerts=certs["ca"], qos=0)
    untrusted = MQTTSource(f"mqtts://127.0.0.1:{tls_port}", "tls", qos=0)  # system CAs
    t.collect(trusted.createStream(t.ssc))
    t.collect(untrusted.createStream(t.ssc))
    t.start()
    deadline = time.monotonic() + WAIT
    while "over tls" not in t.records():
        assert time.monotonic() < deadline, t.events.error_messages()
        publish(broker.url, "tls", ["over tls"], qos=0)  # the plain listener, same broker
        t.run_until(lambda: True, "a batch")
    assert t.records().count("over tls") >= 1
    t.events.wait(lambda: any("CERTIFICATE_VERIFY_FAILED" in m
                              for m in t.events.error_messages()), "the untrusted certificate")


def test_websockets_and_mqtt_3_1_1(brokers, stream_test):
    from ember.testing import free_port

    ws_port = free_port()
    broker = brokers(conf_lines=[f"listener {ws_port} 127.0.0.1", "protocol websockets"])
    create_session(broker.url, "v311", "proto")  # MQTT 5 session, resumed in 3.1.1
    t = stream_test()
    t.collect(MQTTSource(f"ws://127.0.0.1:{ws_port}", "proto", qos=0).createStream(t.ssc))
    t.collect(MQTTSource(broker.url, "proto", clientId="v311", cleanSession=False,
                         mqttVersion=4).createStream(t.ssc))
    t.start()
    deadline = time.monotonic() + WAIT
    while t.records().count("both") < 2:
        assert time.monotonic() < deadline, (t.records(), t.events.error_messages())
        publish(broker.url, "proto", ["both"], qos=1)
        t.run_until(lambda: True, "a batch")


# --------------------------------------------------------------------------- flow


def test_max_inflight_cuts_a_block_without_waiting_for_the_block_interval(brokers, stream_test):
    broker = brokers(settings={})  # mosquitto's defaults: 20 messages in flight per client
    create_session(broker.url, "window", "w")
    t = stream_test(ember_streaming_blockInterval="60s")
    t.collect(MQTTSource(broker.url, "w", clientId="window", cleanSession=False,
                         maxInflight=20).createStream(t.ssc))
    t.start()
    receiver = t.ssc._graph.inputs[0].receiver
    sent = _texts("w", 200)
    publish(broker.url, "w", sent, qos=1)
    # The broker sends about 20 at a time and waits for their acknowledgements: only blocks
    # cut every maxInflight messages, long before the 60 s block interval, let them through.
    # The last window may be cut short; it waits in the receiver for the block interval or
    # the stop. A graceful stop stores what was received, so wait until the receiver holds
    # the rest: messages still at the broker would stay there for the next session.
    t.run_until(lambda: len(t.records()) >= 180 and len(t.records()) + receiver.pending >= 200,
                "all but the last window processed, and the last window received")
    t.stop(graceful=True)
    assert t.records() == sent


def test_the_receiver_name_says_where_it_reads():
    receiver = MQTTSource("tcp://broker:1884", ["a", "b/#"]).createReceiver()
    assert receiver.name() == "MQTTReceiver(tcp://broker:1884, a, b/#)"
    assert receiver.pending == 0 and receiver.isStopped()
