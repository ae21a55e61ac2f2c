"""Spark's MQTTWordCount: count the words of the messages published on an MQTT topic.

    python examples/mqtt_wordcount.py tcp://localhost:1883 sensors/text   # until Ctrl-C
    python examples/mqtt_wordcount.py --demo                              # ~5 s, stops itself

Needs the ember-mqtt plugin (``pip install ember-mqtt``; advanced sources are installed only
when needed). Written against PySpark's API: ``MQTTUtils`` is imported from
``ember.pyspark.streaming.mqtt``, as PySpark 1.x's ``pyspark.streaming.mqtt``.

The stream is *reliable*: QoS 1 with a persistent session (``clientId``,
``cleanSession=False``), so a message is acknowledged to the broker only once it is stored,
and what a failure cut off is sent again.

With ``--demo``, a Mosquitto broker (the ``mosquitto`` program must be installed) is started on
a free port on 127.0.0.1, a publisher sends a few lines of text a second, and the program
prints a few batches and stops by itself (a graceful stop: what was received is counted).
"""

from __future__ import annotations

import argparse
import itertools

from _demo import DEMO_TEXT, BatchCounter, Ticker
from ember.pyspark import SparkContext
from ember.pyspark.streaming import StreamingContext
from ember.pyspark.streaming.mqtt import MQTTUtils

#: Batches (with data or not) the demo prints before it stops.
DEMO_BATCHES = 5


class DemoPublisher(Ticker):
    """Publishes :data:`DEMO_TEXT` over and over on ``topic``, four lines a second."""

    def __init__(self, url: str, topic: str) -> None:
        from ember_mqtt.testing import publish

        self._publish = publish
        self.url, self.topic = url, topic
        self._lines = itertools.cycle(DEMO_TEXT)
        super().__init__(0.25)

    def tick(self) -> None:
        """Publish the next line."""
        self._publish(self.url, self.topic, [next(self._lines)], qos=1)


def main() -> None:
    """Run the example."""
    ap = argparse.ArgumentParser(description="Count the words of MQTT messages.")
    ap.add_argument("brokerUrl", nargs="?", help="the broker, e.g. tcp://localhost:1883")
    ap.add_argument("topic", nargs="?", help="the topic to subscribe to")
    ap.add_argument("--demo", action="store_true",
                    help="start a local Mosquitto broker and a publisher; stop after a few batches")
    ap.add_argument("--master", default="local[2]", help="where tasks run (default local[2])")
    args = ap.parse_args()
    if args.demo == (args.brokerUrl is not None):
        ap.error("give a broker URL and a topic, or --demo")
    if not args.demo and args.topic is None:
        ap.error("give the topic to subscribe to")

    broker = publisher = None
    if args.demo:
        from ember_mqtt.testing import MosquittoBroker, create_session

        broker = MosquittoBroker().start()
        args.brokerUrl, args.topic = broker.url, "demo/text"
        create_session(broker.url, "mqtt-wordcount", args.topic)  # keep what comes early

    sc = SparkContext(args.master, "MQTTWordCount")
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, 1)
    lines = MQTTUtils.createStream(ssc, args.brokerUrl, args.topic, clientId="mqtt-wordcount",
                                   cleanSession=False, qos=1)
    counts = lines.flatMap(lambda line: line.split(" ")) \
                  .map(lambda word: (word, 1)) \
                  .reduceByKey(lambda a, b: a + b)
    counts.pprint()

    batches = BatchCounter(DEMO_BATCHES)
    ssc.addStreamingListener(batches)
    ssc.start()
    try:
        if args.demo:
            publisher = DemoPublisher(args.brokerUrl, args.topic)
            batches.done.wait(60)
        else:
            ssc.awaitTermination()
    except KeyboardInterrupt:
        pass
    finally:
        if publisher is not None:
            publisher.close()
        ssc.stop(stopSparkContext=True, stopGraceFully=True)
        if broker is not None:
            broker.close()


if __name__ == "__main__":
    main()
