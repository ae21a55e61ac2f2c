"""Word count over the text files of a directory, one file per batch, printed per batch.

    python examples/text_files_wordcount.py DIRECTORY [--interval 0.5] [--master local[2]]
    python examples/text_files_wordcount.py --demo

Written against PySpark's API through ``ember.pyspark``.

What it is, honestly: PySpark's ``hdfs_wordcount`` example counts the words of files as they
*appear* in a directory, with ``ssc.textFileStream(directory)``. That needs ember's file source
plugin, which does not exist yet. This program instead reads the files that are in
``DIRECTORY`` when it starts (sorted by name; hidden files skipped), turns each into an RDD
with ``sc.textFile(path)``, and feeds those RDDs to ``ssc.queueStream``, one file per batch.
The rest — splitting lines into words, ``(word, 1)`` pairs, ``reduceByKey`` and ``pprint`` per
batch — is what the file-watching version does. Files added later are not seen. The program
stops by itself after the last file's batch.

``--demo`` writes two small files to a temporary directory and counts those.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from operator import add

from _demo import BatchCounter
from ember.pyspark import SparkContext
from ember.pyspark.streaming import StreamingContext

DEMO_FILES = {
    "part-1.txt": "the quick brown fox\njumps over the lazy dog\n",
    "part-2.txt": "the dog sleeps\nthe fox runs away\n",
}


def write_demo_files(directory: str) -> None:
    """Write the demo's text files into ``directory``."""
    for name, text in DEMO_FILES.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(text)


def text_files(directory: str) -> list[str]:
    """The visible regular files of ``directory``, sorted by name."""
    return [
        os.path.join(directory, name)
        for name in sorted(os.listdir(directory))
        if not name.startswith((".", "_")) and os.path.isfile(os.path.join(directory, name))
    ]


def count_words(directory: str, interval: float, master: str) -> None:
    """Count the words of each file of ``directory`` in its own batch, printing each batch."""
    files = text_files(directory)
    if not files:
        raise SystemExit(f"no text files in {directory}")
    sc = SparkContext(master, "PythonStreamingTextFilesWordCount")
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, interval)

    lines = ssc.queueStream([sc.textFile(path) for path in files])
    counts = lines.flatMap(lambda line: line.split()).map(lambda w: (w, 1)).reduceByKey(add)
    counts.pprint()

    listener = BatchCounter(len(files))
    ssc.addStreamingListener(listener)
    ssc.start()
    finished = listener.done.wait(timeout=30 + len(files) * interval)
    ssc.stop(stopSparkContext=True, stopGraceFully=True)
    if not finished:
        raise SystemExit("the batches did not complete in time")


def main() -> None:
    """Run the example."""
    ap = argparse.ArgumentParser(description="Count the words of a directory's files, per batch.")
    ap.add_argument("directory", nargs="?", help="a directory of text files")
    ap.add_argument("--demo", action="store_true", help="count two generated demo files")
    ap.add_argument("--interval", type=float, default=0.5, help="batch interval in s (0.5)")
    ap.add_argument("--master", default="local[2]", help="where tasks run (default local[2])")
    args = ap.parse_args()
    if args.demo == bool(args.directory):
        ap.error("give a DIRECTORY or --demo (not both)")
    if args.demo:
        with tempfile.TemporaryDirectory(prefix="ember-wordcount-") as directory:
            write_demo_files(directory)
            count_words(directory, args.interval, args.master)
    elif not os.path.isdir(args.directory):
        sys.exit(f"not a directory: {args.directory}")
    else:
        count_words(args.directory, args.interval, args.master)


if __name__ == "__main__":
    main()
