"""A streaming application for the driver-kill tests (run as a separate process).

It reads an MQTT topic with a persistent session and writes each batch's records to
``OUT/batch-<time ms>.json`` (written to a temporary name, then renamed). With ``--until N``
it stops gracefully once N distinct records were written, and exits 0.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time


def written(out: str) -> set[str]:
    """Every record written to ``out`` so far."""
    records: set[str] = set()
    for path in glob.glob(os.path.join(out, "batch-*.json")):
        with open(path, encoding="utf-8") as f:
            records.update(json.load(f))
    return records


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--block-interval", default="20ms")
    parser.add_argument("--wal", action="store_true")
    parser.add_argument("--until", type=int, default=0)
    args = parser.parse_args(argv)

    from ember import Conf, Context
    from ember.streaming import StreamingContext
    from ember_mqtt import MQTTUtils

    out = args.out
    os.makedirs(out, exist_ok=True)

    def write_batch(t, rdd) -> None:
        records = rdd.collect()
        if records and os.environ.get("MQTT_DRIVER_HOLD"):
            # a driver too slow to finish its batches: it holds them until it is killed
            print(f"holding {len(records)}", flush=True)
            time.sleep(3600)
        path = os.path.join(out, f"batch-{round(t.timestamp() * 1000)}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(records, f)
        os.replace(path + ".tmp", path)

    def create() -> StreamingContext:
        conf = Conf().set("ember.streaming.blockInterval", args.block_interval)
        conf.set("ember.streaming.receiverRestartDelay", "100ms")
        if args.wal:
            conf.set("ember.streaming.receiver.writeAheadLog.enable", "true")
        sc = Context("inline", "mqtt-driver", conf=conf)
        ssc = StreamingContext(sc, 0.2)
        ssc.checkpoint(args.checkpoint)
        stream = MQTTUtils.createStream(ssc, args.url, args.topic, clientId=args.client_id,
                                        cleanSession=False)
        stream.foreachRDD(write_batch)
        return ssc

    ssc = StreamingContext.getOrCreate(args.checkpoint, create)
    ssc.start()
    print("started", flush=True)
    if not args.until:
        ssc.awaitTermination()
        return 0
    deadline = time.monotonic() + 60
    while len(written(out)) < args.until:
        if time.monotonic() > deadline:
            print(f"only {len(written(out))} records arrived", file=sys.stderr)
            return 1
        time.sleep(0.05)
    ssc.stop(stopSparkContext=True, stopGraceFully=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
