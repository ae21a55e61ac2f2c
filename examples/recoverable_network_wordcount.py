"""Word counts that survive a driver restart: ``StreamingContext.getOrCreate``.

    python examples/recoverable_network_wordcount.py                  # a demo; ~5 s
    python examples/recoverable_network_wordcount.py localhost 9999 --checkpoint ckpt \\
        --output counts.txt                                            # a real server
    python examples/recoverable_network_wordcount.py --checkpoint ckpt --demo-port 9999
                                                  # run it twice: the second run recovers

PySpark's ``recoverable_network_wordcount.py`` (the guide's "How to configure
Checkpointing") with the import prefix ``pyspark`` changed to ``ember.pyspark``. The word
counts of every batch are appended to an output file (and printed). ``createContext`` builds
the StreamingContext and its streams; ``StreamingContext.getOrCreate(checkpoint,
createContext)`` calls it only when the checkpoint directory holds no checkpoint. Otherwise
the context — its configuration, its streams and the functions given to them, the batches
that had not completed — is rebuilt from the checkpoint, and "Creating new context" is not
printed. What a recovered context does is what the *first* run's ``createContext`` set up
(its host, port and output file too); a program whose code changed is refused: use a new
checkpoint directory, or delete it. See ``docs/state-and-checkpoints.md``.

Data received over a socket but not yet in a completed batch is lost when the driver dies:
a socket cannot send it again (the write-ahead log, which would keep it, is future work).

With no host and port, a small demo server on 127.0.0.1 sends a few lines of text a second;
the program counts a few batches and stops by itself. It listens on a free port, or on
``--demo-port`` — give the same one to every run that shares a ``--checkpoint`` directory,
since the recovered stream connects where the first run's did. Without ``--checkpoint`` the
checkpoint directory (and the output file) are temporary.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import socket
import tempfile
import threading

from ember.pyspark import SparkContext
from ember.pyspark.streaming import StreamingContext
from ember.pyspark.streaming.listener import StreamingListener

DEMO_TEXT = [
    "to be or not to be",
    "that is the question",
]
#: Lines the demo server sends per second.
DEMO_LINES_PER_SECOND = 4
#: Batches the demo counts before it stops.
DEMO_BATCHES = 4


class DemoServer:
    """A text server on 127.0.0.1: sends :data:`DEMO_TEXT` over and over to each client."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="demo-text-server",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                for line in itertools.cycle(DEMO_TEXT):
                    if self._stop.wait(1 / DEMO_LINES_PER_SECOND):
                        return
                    try:
                        conn.sendall(line.encode("utf-8") + b"\n")
                    except OSError:
                        break  # the client went away: wait for the next one

    def close(self) -> None:
        """Stop sending and close the server."""
        self._stop.set()
        self._thread.join()
        self.listener.close()


class BatchCounter(StreamingListener):
    """Sets :attr:`done` once ``n`` batches have completed."""

    def __init__(self, n: int) -> None:
        self.remaining = n
        self.done = threading.Event()

    def onBatchCompleted(self, batchCompleted: object) -> None:
        """Count one completed batch."""
        self.remaining -= 1
        if self.remaining <= 0:
            self.done.set()


def createContext(host: str, port: int, outputPath: str, master: str) -> StreamingContext:
    """Build a new StreamingContext: word counts of each batch appended to ``outputPath``.

    Called by getOrCreate only when there is no checkpoint to recover from.
    """
    # If you do not see this printed, the StreamingContext has been loaded
    # from the checkpoint
    print("Creating new context", flush=True)
    if os.path.exists(outputPath):
        os.remove(outputPath)
    print(f"Appending the counts to {os.path.abspath(outputPath)}", flush=True)
    sc = SparkContext(master, "PythonStreamingRecoverableNetworkWordCount")
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, 1)

    # Create a socket stream on target ip:port and count the
    # words in input stream of \n delimited text (eg. generated by 'nc')
    lines = ssc.socketTextStream(host, port)
    words = lines.flatMap(lambda line: line.split(" "))
    wordCounts = words.map(lambda x: (x, 1)).reduceByKey(lambda x, y: x + y)

    def echo(time: object, rdd: object) -> None:
        counts = f"Counts at time {time} {sorted(rdd.collect())}"
        print(counts, flush=True)
        with open(outputPath, "a", encoding="utf-8") as f:
            f.write(counts + "\n")

    wordCounts.foreachRDD(echo)
    return ssc


def main() -> None:
    """Run the example."""
    ap = argparse.ArgumentParser(description="Recoverable word counts of text from a TCP "
                                             "server, appended to a file.")
    ap.add_argument("hostname", nargs="?", help="the server's host (default: a demo server)")
    ap.add_argument("port", nargs="?", type=int, help="the server's port")
    ap.add_argument("--checkpoint", help="the checkpoint directory (default: a temporary one)")
    ap.add_argument("--output", help="the file counts are appended to (default: "
                                     "counts.txt beside the checkpoint directory)")
    ap.add_argument("--demo-port", type=int, default=0,
                    help="the demo server's port (default: a free one)")
    ap.add_argument("--master", default="local[2]", help="where tasks run (default local[2])")
    args = ap.parse_args()
    if (args.hostname is None) != (args.port is None):
        ap.error("give both a host name and a port, or neither for the demo server")
    demo = DemoServer(args.demo_port) if args.hostname is None else None
    host, port = ("127.0.0.1", demo.port) if demo else (args.hostname, args.port)
    scratch = None if args.checkpoint else tempfile.mkdtemp(prefix="recoverable-wordcount-")
    checkpoint = args.checkpoint or os.path.join(scratch, "checkpoint")
    output = args.output or os.path.join(
        os.path.dirname(os.path.abspath(checkpoint)), "counts.txt")

    created = []

    def setup() -> StreamingContext:
        created.append(True)
        return createContext(host, port, output, args.master)

    # Get StreamingContext from checkpoint data or create a new one
    ssc = StreamingContext.getOrCreate(checkpoint, setup)
    if not created:
        print(f"Recovered from the checkpoint in {checkpoint}", flush=True)
    # Set-up done on every run, new or recovered: it is not part of the checkpoint.
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
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
