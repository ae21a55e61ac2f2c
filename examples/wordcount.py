"""Word count on ember's RDD engine, PySpark style.

    python examples/wordcount.py [FILE ...] [--master local[2]]

With no file it counts a few built-in lines, so it runs anywhere.
"""

from __future__ import annotations

import argparse
import operator

from ember import Context

SAMPLE = [
    "to be or not to be",
    "that is the question",
    "whether tis nobler in the mind to suffer",
]


def main() -> None:
    ap = argparse.ArgumentParser(description="Count the words of text files with ember.")
    ap.add_argument("files", nargs="*", help="text files (default: a built-in sample)")
    ap.add_argument("--master", default="local[2]", help="where tasks run (default local[2])")
    args = ap.parse_args()
    with Context(args.master, "wordcount") as sc:
        lines = sc.textFile(",".join(args.files)) if args.files else sc.parallelize(SAMPLE)
        counts = (
            lines.flatMap(lambda line: line.split())
            .map(lambda word: (word, 1))
            .reduceByKey(operator.add)
        )
        for word, n in sorted(counts.collect(), key=lambda wc: (-wc[1], wc[0]))[:20]:
            print(f"{n:6d}  {word}")


if __name__ == "__main__":
    main()
