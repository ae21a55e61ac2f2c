"""A custom receiver: every line appended to a log file, counted by level, per batch.

    python examples/custom_receiver.py [--interval 0.5] [--master local[2]]
    python examples/custom_receiver.py --file /var/log/app.log --batches 10

:class:`FileTailReceiver` follows a text file as ``tail -f`` does and stores each complete
line. It is the shape of every receiver: ``onStart`` starts a thread and returns at once; the
thread reads until ``isStopped()`` and stores what it reads; ``onStop`` ends the thread; a
read error asks for a ``restart``. Lines are stored as raw bytes (``storeBytes``), cut at the
last line break, so decoding and splitting happen in the workers, and a line written in two
pieces is stored once it is whole.

Without ``--file`` the program writes a demo log itself (30 lines, some in two pieces), counts
``(level, n)`` pairs in every batch, prints them with ``pprint`` and, once every line has been
counted, stops gracefully and prints the totals. With ``--file`` it follows that file for
``--batches`` batches.

The streaming side is PySpark's API through ``ember.pyspark``; the receiver is ember's own
(PySpark has no custom receivers in Python).
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import threading
from operator import add

from _demo import BatchCounter
from ember.pyspark import SparkContext
from ember.pyspark.streaming import StreamingContext
from ember.receivers import Receiver

#: The demo log: (level, how many lines).
DEMO = [("INFO", 20), ("WARN", 7), ("ERROR", 3)]


class FileTailReceiver(Receiver):
    """Stores every line appended to the text file ``path``, from its current end.

    :param path: the file to follow (it must exist).
    :param poll: seconds to wait for more data when the end of the file is reached.
    """

    def __init__(self, path: str, poll: float = 0.05) -> None:
        super().__init__()
        self.path = path
        self.poll = poll
        self._position: int | None = None  # bytes of the file already stored
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def name(self) -> str:
        """Shown to listeners: the class and the file."""
        return f"FileTailReceiver({self.path})"

    def onStart(self) -> None:
        """Start the reading thread; return at once."""
        if self._position is None:  # the first start: follow from the file's current end
            self._position = os.path.getsize(self.path)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._tail, args=(self._halt,),
                                        name="file-tail-receiver", daemon=True)
        self._thread.start()

    def onStop(self) -> None:
        """End the reading thread and wait for it (called on stop and before a restart)."""
        self._halt.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _tail(self, halt: threading.Event) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._position or 0)
                pending = b""  # the start of a line whose end has not been written yet
                while not halt.is_set() and not self.isStopped():
                    chunk = f.read(1 << 16)
                    if not chunk:
                        halt.wait(self.poll)
                        continue
                    data = pending + chunk
                    cut = data.rfind(b"\n") + 1
                    if cut:
                        self.storeBytes(data[:cut])  # whole lines; they become records
                        self._position = (self._position or 0) + cut
                    pending = data[cut:]
        except OSError as exc:  # the file went away: try again later, from the same place
            self.restart(f"cannot read {self.path}", exc)


def write_demo_log(path: str, start: threading.Event) -> None:
    """Append the demo log's lines to ``path``, some in two writes, with short pauses."""
    lines = [f"{level} event {i}" for level, n in DEMO for i in range(n)]
    lines = [lines[i] for i in sorted(range(len(lines)), key=lambda i: (i * 7) % len(lines))]
    start.wait()
    with open(path, "a", encoding="utf-8") as f:
        for i, line in enumerate(lines):
            if i % 4 == 0:  # half a line now, the rest a moment later
                f.write(line[:3])
                f.flush()
                threading.Event().wait(0.02)
                f.write(line[3:] + "\n")
            else:
                f.write(line + "\n")
            f.flush()
            threading.Event().wait(0.02)


def main() -> None:
    """Run the example."""
    ap = argparse.ArgumentParser(description="Count the lines appended to a log, by level.")
    ap.add_argument("--file", help="the log file to follow (default: a demo log)")
    ap.add_argument("--batches", type=int, default=10, help="batches to run with --file (10)")
    ap.add_argument("--interval", type=float, default=0.5, help="batch interval in s (0.5)")
    ap.add_argument("--master", default="local[2]", help="where tasks run (default local[2])")
    args = ap.parse_args()

    demo = args.file is None
    tmp = tempfile.TemporaryDirectory() if demo else None
    path = os.path.join(tmp.name, "app.log") if tmp else args.file
    if demo:
        open(path, "w").close()

    sc = SparkContext(args.master, "CustomReceiver")
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, args.interval)

    lines = ssc.receiverStream(FileTailReceiver(path))
    counts = lines.map(lambda line: (line.split(" ", 1)[0], 1)).reduceByKey(add)
    counts.pprint()

    totals: collections.Counter[str] = collections.Counter()
    counted = threading.Condition()
    expected = sum(n for _, n in DEMO)

    def add_to_totals(rdd: object) -> None:
        with counted:
            totals.update(dict(rdd.collect()))  # type: ignore[attr-defined]
            counted.notify_all()

    counts.foreachRDD(add_to_totals)
    batches = BatchCounter(args.batches)
    ssc.addStreamingListener(batches)

    ssc.start()
    start_writing = threading.Event()
    writer = threading.Thread(target=write_demo_log, args=(path, start_writing), daemon=True)
    try:
        if demo:
            writer.start()
            start_writing.set()
            with counted:
                finished = counted.wait_for(lambda: sum(totals.values()) >= expected, 30)
        else:
            finished = batches.done.wait(timeout=30 + args.batches * args.interval)
    finally:
        ssc.stop(stopSparkContext=True, stopGraceFully=True)
        if writer.is_alive():
            writer.join()
        if tmp is not None:
            tmp.cleanup()
    print("total:", dict(sorted(totals.items())))
    if not finished:
        raise SystemExit("the lines were not all counted in time")


if __name__ == "__main__":
    main()
