"""The guide's quick example: count the words of text received from a TCP server, every second.

    python examples/network_wordcount.py localhost 9999   # read a real server, until Ctrl-C
    python examples/network_wordcount.py                  # a built-in demo server; ~10 s

Written against PySpark's API through ``ember.pyspark``: it is the Spark Streaming
programming guide's "A Quick Example" with the import prefix ``pyspark`` changed to
``ember.pyspark``. To feed it yourself, run Netcat in another terminal first and type
lines into it::

    nc -lk 9999

With no arguments, a small demo server on 127.0.0.1 (a free port) sends a few lines of
text a second; the program prints a few batches and stops by itself (a graceful stop: the
lines already received are counted first).
"""

from __future__ import annotations

import argparse

from _demo import BatchCounter, DemoServer
from ember.pyspark import SparkContext
from ember.pyspark.streaming import StreamingContext

#: Batches (with data or not) the demo prints before it stops.
DEMO_BATCHES = 5


def main() -> None:
    """Run the example."""
    ap = argparse.ArgumentParser(description="Count words received from a TCP server.")
    ap.add_argument("hostname", nargs="?", help="the server's host (default: a demo server)")
    ap.add_argument("port", nargs="?", type=int, help="the server's port")
    ap.add_argument("--master", default="local[2]", help="where tasks run (default local[2])")
    args = ap.parse_args()
    if (args.hostname is None) != (args.port is None):
        ap.error("give both a host name and a port, or neither for the demo server")
    demo = DemoServer() if args.hostname is None else None
    hostname, port = ("127.0.0.1", demo.port) if demo else (args.hostname, args.port)

    # Create a local StreamingContext with two worker processes and a batch interval of 1 s.
    sc = SparkContext(args.master, "NetworkWordCount")
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, 1)

    # A DStream of the lines received from hostname:port.
    lines = ssc.socketTextStream(hostname, port)
    # Split each line into words, count each word in each batch.
    words = lines.flatMap(lambda line: line.split(" "))
    pairs = words.map(lambda word: (word, 1))
    wordCounts = pairs.reduceByKey(lambda x, y: x + y)
    # Print the first ten elements of each RDD generated in this DStream to the console.
    wordCounts.pprint()

    batches = BatchCounter(DEMO_BATCHES)
    ssc.addStreamingListener(batches)
    try:
        ssc.start()  # start the computation
        if demo is None:
            ssc.awaitTermination()  # wait for the computation to terminate (Ctrl-C)
        else:
            batches.done.wait(timeout=30)
    except KeyboardInterrupt:
        pass
    finally:
        ssc.stop(stopSparkContext=True, stopGraceFully=True)
        if demo is not None:
            demo.close()


if __name__ == "__main__":
    main()
