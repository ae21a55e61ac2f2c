"""Spark's TwitterPopularTags: the most popular hashtags of posts, over sliding windows.

    X_BEARER_TOKEN=... python examples/twitter_popular_tags.py "#python" "#data"   # Ctrl-C
    python examples/twitter_popular_tags.py --demo                    # ~6 s, stops by itself

Needs the ember-twitter plugin (``pip install ember-twitter``; advanced sources are installed
only when needed). Given filters, it reads the X API v2 filtered stream (the filters become
the app's rules when missing); without, the sampled stream. Every batch it prints the hashtags
of the last 60 and the last 10 seconds, most frequent first, as Spark's example does.

With ``--demo``, the posts come from a local server speaking the X API v2 streaming protocol
(``ember_twitter.testing.XStreamServer``, on 127.0.0.1; no network, no token), the windows are
4 and 2 seconds, and the program stops by itself after a few batches.
"""

from __future__ import annotations

import argparse
import itertools
import random

from _demo import BatchCounter, Ticker
from ember.pyspark import SparkContext
from ember.pyspark.streaming import StreamingContext
from ember.pyspark.streaming.twitter import TwitterUtils

DEMO_TAGS = ["#ember", "#spark", "#python", "#streaming", "#mqtt", "#zeromq"]
DEMO_WORDS = ["counting", "windows", "over", "a", "stream", "of", "posts", "today", "again"]
#: Batches the demo prints before it stops.
DEMO_BATCHES = 6


class DemoFeed(Ticker):
    """A local X API v2 server and a thread posting a few posts with hashtags every 0.1 s."""

    def __init__(self) -> None:
        from ember_twitter.testing import XStreamServer

        self.server = XStreamServer(token="demo-token", keepalive=0.5)
        self._rng = random.Random(7)
        self._ids = itertools.count(1)
        super().__init__(0.1)

    def tick(self) -> None:
        """Post three posts."""
        rng = self._rng
        posts = []
        for _ in range(3):
            # a skewed choice: the first tags are the most popular
            tags = {DEMO_TAGS[min(int(rng.expovariate(0.8)), len(DEMO_TAGS) - 1)]
                    for _ in range(rng.randint(1, 2))}
            words = rng.sample(DEMO_WORDS, 3) + sorted(tags)
            posts.append({"id": str(next(self._ids)), "text": " ".join(words)})
        self.server.send(posts)

    def close(self) -> None:
        """Stop posting and close the server."""
        super().close()
        self.server.close()


def print_top(seconds: int):
    """A ``foreachRDD`` function printing the ten most popular tags of a window."""

    def show(rdd) -> None:
        top = rdd.take(10)
        print(f"\nPopular topics in last {seconds} seconds ({rdd.count()} total):")
        for count, tag in top:
            print(f"{tag} ({count} tweets)")

    return show


def main() -> None:
    """Run the example."""
    ap = argparse.ArgumentParser(description="Popular hashtags of posts over sliding windows.")
    ap.add_argument("filters", nargs="*", help="filtered-stream rules (none: the sampled stream)")
    ap.add_argument("--demo", action="store_true",
                    help="read a local demo server instead of the X API; stop by itself")
    ap.add_argument("--master", default="local[2]", help="where tasks run (default local[2])")
    args = ap.parse_args()
    demo = DemoFeed() if args.demo else None
    long_window, short_window, interval = (4, 2, 1) if demo else (60, 10, 2)
    options = {"bearerToken": "demo-token", "baseUrl": demo.server.url} if demo else {}

    sc = SparkContext(args.master, "TwitterPopularTags")
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, interval)
    stream = TwitterUtils.createStream(ssc, args.filters or None, **options)

    hashTags = stream.flatMap(lambda post: [w for w in post["text"].split(" ")
                                            if w.startswith("#")])
    topCounts60 = hashTags.map(lambda tag: (tag, 1)) \
        .reduceByKeyAndWindow(lambda a, b: a + b, None, long_window) \
        .map(lambda pair: (pair[1], pair[0])) \
        .transform(lambda rdd: rdd.sortByKey(False))
    topCounts10 = hashTags.map(lambda tag: (tag, 1)) \
        .reduceByKeyAndWindow(lambda a, b: a + b, None, short_window) \
        .map(lambda pair: (pair[1], pair[0])) \
        .transform(lambda rdd: rdd.sortByKey(False))
    topCounts60.foreachRDD(print_top(long_window))
    topCounts10.foreachRDD(print_top(short_window))

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
