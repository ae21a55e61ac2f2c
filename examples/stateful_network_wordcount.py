"""Running word counts of text received from a TCP server: ``updateStateByKey``.

    python examples/stateful_network_wordcount.py localhost 9999   # a real server, until Ctrl-C
    python examples/stateful_network_wordcount.py                  # a built-in demo server; ~5 s

PySpark's ``stateful_network_wordcount.py`` with the import prefix ``pyspark`` changed to
``ember.pyspark``. Each batch prints every word's count *since the program started*, not
just in that batch: ``updateStateByKey(updateFunc)`` keeps a state per word and calls
``updateFunc(new_values, last_sum)`` for every word at every batch. The state starts from
``initialRDD``, ``[("hello", 1), ("world", 1)]``. Stateful streams need a checkpoint
directory, where the state is saved every 10 s; this program uses a temporary one (or
``--checkpoint DIR``). See ``docs/state-and-checkpoints.md``.

To feed it yourself, run Netcat in another terminal first and type lines into it::

    nc -lk 9999

With no arguments, a small demo server on 127.0.0.1 (a free port) sends a few lines of
text a second; the program prints a few batches and stops by itself (a graceful stop: the
lines already received are counted first).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile

from _demo import BatchCounter, DemoServer
from ember.pyspark import SparkContext
from ember.pyspark.streaming import StreamingContext

DEMO_TEXT = [
    "to be or not to be",
    "that is the question",
    "hello world",
]
#: Lines the demo server sends per second.
DEMO_LINES_PER_SECOND = 6
#: Batches the demo prints before it stops.
DEMO_BATCHES = 4


def updateFunc(new_values: list[int], last_sum: int | None) -> int:
    """A word's new running count: its count in this batch plus the last one (``None`` the
    first time the word is seen)."""
    return sum(new_values) + (last_sum or 0)


def main() -> None:
    """Run the example."""
    ap = argparse.ArgumentParser(description="Running word counts of text from a TCP server.")
    ap.add_argument("hostname", nargs="?", help="the server's host (default: a demo server)")
    ap.add_argument("port", nargs="?", type=int, help="the server's port")
    ap.add_argument("--checkpoint", help="the checkpoint directory (default: a temporary one)")
    ap.add_argument("--master", default="local[2]", help="where tasks run (default local[2])")
    args = ap.parse_args()
    if (args.hostname is None) != (args.port is None):
        ap.error("give both a host name and a port, or neither for the demo server")
    demo = DemoServer(DEMO_TEXT, DEMO_LINES_PER_SECOND) if args.hostname is None else None
    hostname, port = ("127.0.0.1", demo.port) if demo else (args.hostname, args.port)
    checkpoint = args.checkpoint or tempfile.mkdtemp(prefix="stateful-wordcount-")

    sc = SparkContext(args.master, "PythonStreamingStatefulNetworkWordCount")
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, 1)
    ssc.checkpoint(checkpoint)  # updateStateByKey saves its state there

    # RDD with initial state (key, value) pairs
    initialStateRDD = sc.parallelize([("hello", 1), ("world", 1)])

    lines = ssc.socketTextStream(hostname, port)
    running_counts = lines.flatMap(lambda line: line.split(" ")) \
        .map(lambda word: (word, 1)) \
        .updateStateByKey(updateFunc, initialRDD=initialStateRDD)
    running_counts.pprint()

    batches = BatchCounter(DEMO_BATCHES)
    ssc.addStreamingListener(batches)
    ssc.start()
    try:
        if demo is None:
            ssc.awaitTermination()  # until Ctrl-C
        else:
            batches.done.wait(timeout=30)
    except KeyboardInterrupt:
        pass
    finally:
        ssc.stop(stopSparkContext=True, stopGraceFully=True)
        if demo is not None:
            demo.close()
        if args.checkpoint is None:
            shutil.rmtree(checkpoint, ignore_errors=True)


if __name__ == "__main__":
    main()
