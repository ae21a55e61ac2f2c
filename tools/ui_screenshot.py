#!/usr/bin/env python3
"""Regenerate ``docs/images/ui-statistics.png``: the UI's statistics page of a demo stream.

    .venv/bin/python tools/ui_screenshot.py [--batches 40] [--interval 0.5] [--out PATH]

Runs a word count on ``local[2]`` with the system clock (so the delays are real): a queue
stream whose batches grow and shrink, and a receiver that stores lines at a steady rate.
One batch of the queue stream's second output operation fails on purpose, so the page
shows how a failure looks. While the stream runs, headless Chromium (Debian's ``chromium``
and ``chromium-driver``, driven by Selenium) opens the statistics page, waits until it shows
every batch, and saves the screenshot. Needs the ``ember-ui`` plugin installed.
"""

from __future__ import annotations

import argparse
import math
import operator
import os
import random
import sys
import tempfile
import threading
import time

from ember import Conf, Context
from ember.receivers import Receiver
from ember.streaming import StreamingContext

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "docs", "images", "ui-statistics.png")
WORDS = ("spark streaming ember batch window receiver block stream record output "
         "checkpoint driver worker shuffle reduce count").split()


class LinesReceiver(Receiver):
    """Stores ``rate`` lines a second from its own thread until it is stopped."""

    def __init__(self, rate: int) -> None:
        super().__init__()
        self.rate = rate
        self._thread: threading.Thread | None = None

    def name(self) -> str:
        return "LinesReceiver"

    def onStart(self) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-receiver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rng = random.Random(3)
        tick = 0.05
        while not self.isStopped():
            n = int(self.rate * tick * (0.6 + 0.8 * rng.random()))
            self.storeMany([" ".join(rng.choices(WORDS, k=8)) for _ in range(n)])
            time.sleep(tick)

    def onStop(self) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def demo_batches(n: int) -> list[list[str]]:
    """``n`` batches of lines whose sizes follow a slow wave (2k to 14k lines)."""
    rng = random.Random(7)
    out = []
    for i in range(n):
        size = int(8000 + 6000 * math.sin(i / 5.0))
        out.append([" ".join(rng.choices(WORDS, k=10)) for _ in range(size)])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=40, help="batches to run before the shot")
    ap.add_argument("--interval", type=float, default=0.5, help="batch interval (s)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="where to write the PNG")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1500)
    args = ap.parse_args(argv)

    import ember_ui
    from ember_ui._browser import open_chromium

    conf = Conf().set("ember.ui.port", 0)
    sc = Context("local[2]", "wordcount-demo", conf)
    ssc = StreamingContext(sc, args.interval)
    batches = demo_batches(args.batches + 10)
    lines = ssc.queueStream(batches)
    counts = lines.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(operator.add)
    top: dict = {}
    counts.foreachRDD(lambda rdd: top.update(rdd.takeOrdered(5, key=lambda kv: -kv[1])))
    fail_at = args.batches // 2

    def alert(t, rdd):
        alert.n += 1
        if alert.n == fail_at:
            raise RuntimeError("demo: the alert sink is unreachable (this failure is on purpose)")

    alert.n = 0
    counts.foreachRDD(alert)
    ssc.receiverStream(LinesReceiver(4000)).count().foreachRDD(lambda rdd: rdd.collect())
    ssc.start()
    status = 1
    driver = None
    try:
        ui = ember_ui.current_ui()
        if ui is None or ui.url is None:
            print("the UI did not start (is ember-ui installed and enabled?)", file=sys.stderr)
            return 1
        deadline = time.monotonic() + args.batches * args.interval + 120
        while ui.store.snapshot().total_completed < args.batches:
            if time.monotonic() > deadline:
                print("the demo stream did not make progress", file=sys.stderr)
                return 1
            time.sleep(0.1)
        with tempfile.TemporaryDirectory(prefix="ember-ui-shot-") as profile:
            driver = open_chromium(profile, args.width, args.height)
            try:
                driver.get(ui.url)
                wait_until = time.monotonic() + 30
                while time.monotonic() < wait_until:
                    shown = driver.execute_script("return document.body.dataset.version || '0'")
                    if int(shown) >= args.batches:
                        break
                    time.sleep(0.1)
                time.sleep(0.3)  # let the last frame paint
                os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
                driver.save_screenshot(args.out)
            finally:
                driver.quit()
        print(f"wrote {args.out}")
        status = 0
    finally:
        ssc.stop(stopSparkContext=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
