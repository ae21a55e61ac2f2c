"""Spark's ZeroMQWordCount: count the words of the messages a ZeroMQ publisher sends.

    python examples/zeromq_wordcount.py tcp://127.0.0.1:1234 foo   # until Ctrl-C
    python examples/zeromq_wordcount.py --demo                     # ~5 s, stops by itself

Needs the ember-zeromq plugin (``pip install ember-zeromq``; advanced sources are installed
only when needed). The publisher sends two-frame messages ``[topic, text]``; the stream
subscribes to the topic, and ``bytesToObjects`` — which runs in the workers — turns each
message into its words.

With ``--demo``, a publisher on a free port on 127.0.0.1 sends a few lines a second, and the
program prints a few batches and stops by itself (a graceful stop: what was received is
counted). ZeroMQ's publish/subscribe is at most once: what is sent while nobody subscribes is
dropped (the demo's publisher waits for the subscriber).
"""

from __future__ import annotations

import argparse
import itertools

from _demo import DEMO_TEXT, BatchCounter, Ticker
from ember.pyspark import SparkContext
from ember.pyspark.streaming import StreamingContext
from ember.pyspark.streaming.zeromq import ZeroMQUtils

#: Batches (with data or not) the demo prints before it stops.
DEMO_BATCHES = 5


def bytes_to_words(frames: list[bytes]) -> list[str]:
    """``[topic, text]`` -> the words of the text."""
    return frames[-1].decode("utf-8", "replace").split(" ")


class DemoPublisher(Ticker):
    """Sends :data:`DEMO_TEXT` over and over as ``[topic, line]``, four lines a second."""

    def __init__(self, topic: str) -> None:
        from ember_zeromq.testing import Publisher

        self.publisher = Publisher()
        self.topic = topic.encode("utf-8")
        self._lines = itertools.cycle(DEMO_TEXT)
        super().__init__(0.25)

    @property
    def url(self) -> str:
        """Where the publisher listens."""
        return self.publisher.endpoint

    def tick(self) -> None:
        """Send the next line."""
        self.publisher.send([[self.topic, next(self._lines).encode("utf-8")]])

    def close(self) -> None:
        """Stop publishing and close the socket."""
        super().close()
        self.publisher.close()


def main() -> None:
    """Run the example."""
    ap = argparse.ArgumentParser(description="Count the words of ZeroMQ messages.")
    ap.add_argument("url", nargs="?", help="the publisher, e.g. tcp://127.0.0.1:1234")
    ap.add_argument("topic", nargs="?", help="the topic to subscribe to")
    ap.add_argument("--demo", action="store_true",
                    help="run a local publisher; stop after a few batches")
    ap.add_argument("--master", default="local[2]", help="where tasks run (default local[2])")
    args = ap.parse_args()
    if args.demo == (args.url is not None) or (not args.demo and args.topic is None):
        ap.error("give a publisher URL and a topic, or --demo")
    demo = DemoPublisher("foo") if args.demo else None
    url, topic = (demo.url, "foo") if demo else (args.url, args.topic)

    sc = SparkContext(args.master, "ZeroMQWordCount")
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, 1)
    words = ZeroMQUtils.createStream(ssc, url, topic, bytes_to_words)
    counts = words.map(lambda word: (word, 1)).reduceByKey(lambda a, b: a + b)
    counts.pprint()

    batches = BatchCounter(DEMO_BATCHES)
    ssc.addStreamingListener(batches)
    ssc.start()
    try:
        if demo is not None:
            batches.done.wait(60)
        else:
            ssc.awaitTermination()
    except KeyboardInterrupt:
        pass
    finally:
        ssc.stop(stopSparkContext=True, stopGraceFully=True)
        if demo is not None:
            demo.close()


if __name__ == "__main__":
    main()
