"""MQTT ingest: messages/s from a local Mosquitto through the MQTT source into a count, beside
paho-mqtt's own raw subscriber loop on the same broker, in the same run.

    python benchmarks/mqtt_ingest.py [--messages 200000] [--payload 64] [--master local[2]]
                                     [--repeat 3]

Needs the ``mosquitto`` program (Debian package ``mosquitto``) and ember-mqtt. A broker is
started on a free port on 127.0.0.1. For every run, ``--messages`` messages are first queued at
the broker for a persistent session (QoS 0 messages too: ``queue_qos0_messages``), so the
publisher costs nothing during the measurement; then the consumer connects and the clock runs
from its start until it has counted every message:

- ``raw_paho_qos0`` / ``raw_paho_qos1``: one paho client, ``loop_forever()``, a counter in
  ``on_message`` (paho acknowledges QoS 1 itself, at once);
- ``ember_qos<q>_wal_<off|on>``: ``MQTTUtils.createStream(...).count()`` on a StreamingContext
  with 0.25 s batches, summed in ``foreachRDD``, until the sum reaches the total. At QoS 1 the
  session is persistent and a message is acknowledged only after its block is stored (and,
  WAL on, written and fsynced to the write-ahead log).

Prints one JSON object: messages/s of every run, each ember run's ratio to the raw loop of its
QoS, and whether ember reaches 0.8 of the raw loop at QoS 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt
from ember_mqtt.testing import MosquittoBroker, create_session
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TOPIC = "bench/ingest"


def _preload(broker: MosquittoBroker, client_id: str, qos: int, n: int, payload: bytes) -> None:
    """Queue ``n`` messages at the broker for the persistent session ``client_id``."""
    create_session(broker.url, client_id, TOPIC, qos=qos)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.connect("127.0.0.1", broker.port, 60)
    client.loop_start()
    try:
        assert connected.wait(30), "the broker did not accept the publisher"
        for start in range(0, n, 10_000):  # message ids wrap at 65535: publish in chunks
            infos = [client.publish(TOPIC, payload, qos=qos)
                     for _ in range(min(10_000, n - start))]
            # The broker reads a connection in order: once a QoS 1 message sent after them
            # is acknowledged, every message before it is queued for the session.
            marker = client.publish("bench/marker", b"", qos=1)
            marker.wait_for_publish(600)
            assert marker.is_published() and all(i.rc == 0 for i in infos)
    finally:
        client.disconnect()
        client.loop_stop()


def _drop_session(broker: MosquittoBroker, client_id: str) -> None:
    """End the persistent session of ``client_id``, so it queues no more of later runs'
    messages."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port, 60, clean_start=True)
    client.loop(1.0)
    client.disconnect()


_RUNS = iter(range(1_000_000))


def raw_paho(broker: MosquittoBroker, qos: int, n: int, payload: bytes) -> float:
    """Messages/s of paho's own subscriber loop draining ``n`` queued messages."""
    client_id = f"raw-{qos}-{next(_RUNS)}"
    _preload(broker, client_id, qos, n, payload)
    count = 0

    def on_message(client: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal count
        count += 1
        if count >= n:
            client.disconnect()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0xFFFFFFFF
    t0 = time.perf_counter()
    client.connect("127.0.0.1", broker.port, 60, clean_start=False, properties=props)
    client.loop_forever()
    elapsed = time.perf_counter() - t0
    _drop_session(broker, client_id)
    assert count == n, f"the raw loop counted {count} of {n}"
    return n / elapsed


def ember_run(broker: MosquittoBroker, qos: int, wal: bool, n: int, payload: bytes,
              master: str) -> dict[str, object]:
    """Messages/s through the MQTT source into a count."""
    from ember import Conf, Context
    from ember.streaming import StreamingContext
    from ember_mqtt import MQTTUtils

    client_id = f"ember-{qos}-{'wal' if wal else 'nowal'}-{next(_RUNS)}"
    _preload(broker, client_id, qos, n, payload)
    conf = Conf().set("ember.streaming.blockInterval", "200ms")
    if wal:
        conf.set("ember.streaming.receiver.writeAheadLog.enable", "true")
    checkpoints = tempfile.TemporaryDirectory(prefix="ember-mqtt-bench-")
    sc = Context(master, "mqtt_ingest", conf=conf)
    sc.parallelize([0], 1).count()  # start the workers before the clock runs
    ssc = StreamingContext(sc, 0.25)
    ssc.checkpoint(checkpoints.name)
    done = threading.Event()
    total = 0
    batches = 0

    def add(rdd: object) -> None:
        nonlocal total, batches
        total += sum(rdd.collect())  # type: ignore[attr-defined]
        batches += 1
        if total >= n:
            done.set()

    stream = MQTTUtils.createStream(ssc, broker.url, TOPIC, qos=qos, clientId=client_id,
                                    cleanSession=False, encoding=None)
    stream.count().foreachRDD(add)
    t0 = time.perf_counter()
    ssc.start()
    finished = done.wait(600)
    elapsed = time.perf_counter() - t0
    ssc.stop(stopSparkContext=True)
    checkpoints.cleanup()
    _drop_session(broker, client_id)
    assert finished and total == n, f"ember counted {total} of {n}"
    return {"messages_per_s": round(n / elapsed), "seconds": round(elapsed, 3),
            "batches": batches}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--payload", type=int, default=64, help="bytes per message")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds of (raw, ember WAL off, ember WAL on), interleaved; the best "
                         "of each is kept (the machine may be shared)")
    args = ap.parse_args()
    payload = b"m" * args.payload
    wal_available = importlib.util.find_spec("ember.wal") is not None
    settings = {"max_inflight_messages": "1000", "max_queued_messages": "0",
                "queue_qos0_messages": "true"}
    version = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True,
                             check=False).stdout.splitlines()[0:1]
    samples: dict[str, list[dict[str, object]]] = {}
    with MosquittoBroker(persistence=False, settings=settings) as broker:
        for qos in (0, 1):
            for _ in range(args.repeat):
                samples.setdefault(f"raw_paho_qos{qos}", []).append(
                    {"messages_per_s": round(raw_paho(broker, qos, args.messages, payload))})
                for wal in (False, True):
                    if wal and not wal_available:
                        continue
                    name = f"ember_qos{qos}_wal_{'on' if wal else 'off'}"
                    samples.setdefault(name, []).append(
                        ember_run(broker, qos, wal, args.messages, payload, args.master))
    runs: dict[str, dict[str, object]] = {}
    for name, got in samples.items():
        best = dict(max(got, key=lambda r: r["messages_per_s"]))  # type: ignore[arg-type,return-value]
        best["all_messages_per_s"] = [r["messages_per_s"] for r in got]
        runs[name] = best
    for qos in (0, 1):
        raw = runs[f"raw_paho_qos{qos}"]["messages_per_s"]
        for wal in ("off", "on"):
            name = f"ember_qos{qos}_wal_{wal}"
            if name in runs:
                runs[name]["ratio_to_raw"] = round(runs[name]["messages_per_s"] / raw, 3)  # type: ignore[operator]
            else:
                runs[name] = {"skipped": "this ember-core has no write-ahead log"}
    qos0 = runs["ember_qos0_wal_off"]["ratio_to_raw"]
    print(json.dumps({
        "benchmark": "mqtt_ingest",
        "messages": args.messages,
        "payload_bytes": args.payload,
        "master": args.master,
        "repeat": args.repeat,
        "broker": version[0] if version else "mosquitto",
        "python": sys.version.split()[0],
        "runs": runs,
        "qos0_ratio_to_raw": qos0,
        "qos0_reaches_0.8_of_raw": qos0 >= 0.8,  # type: ignore[operator]
    }, indent=2))


if __name__ == "__main__":
    main()
