"""Live updates (server-sent events), /metrics, receivers, and the assets of the pages."""

from __future__ import annotations

import http.client
import json
import threading

from ember.receivers import Receiver
from ember.testing import advance_batches
from prometheus_client.parser import text_string_to_metric_families


def open_events(port: int) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("GET", "/streaming/events")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    assert resp.getheader("Cache-Control") == "no-cache"
    return resp


def next_update(resp: http.client.HTTPResponse) -> dict:
    """The data of the next ``update`` event (other events and comments are skipped)."""
    name, data = None, []
    while True:
        line = resp.fp.readline().decode()
        assert line, "the event stream ended"
        line = line.rstrip("\n")
        if not line:
            if name == "update" and data:
                return json.loads("\n".join(data))
            name, data = None, []
        elif line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data.append(line[len("data: "):])


def test_the_event_stream_sends_everything_first_then_only_new_batches(make_stream):
    s = make_stream()
    s.ssc.queueStream([["a"], ["b", "c"], ["d", "e", "f"], []]).foreachRDD(
        lambda rdd: rdd.count())
    s.ssc.start()
    advance_batches(s.ssc, 2)
    resp = open_events(s.ui.server.port)
    try:
        first = next_update(resp)
        assert first["reset"] is True
        assert first["total"] == 2
        assert [b["batchId"] for b in first["completed"]] == [s.t1, s.t1 + 1000]
        assert [b["inputSize"] for b in first["completed"]] == [1, 2]
        assert first["batchDuration"] == 1000
        assert first["statistics"]["numProcessedRecords"] == 3
        assert first["app"]["id"] == s.ui.settings.app_id
        assert first["receivers"][0]["numRecordsReceived"] == 3
        assert "eventRates" not in first["receivers"][0]

        advance_batches(s.ssc, 1)
        update = next_update(resp)
        while update["total"] < 3:  # a batch's submission and start are updates too
            update = next_update(resp)
        assert update["reset"] is False
        assert [b["batchId"] for b in update["completed"]] == [s.t1 + 2000]
        assert update["completed"][0]["inputSize"] == 3
        assert update["statistics"]["numTotalCompletedBatches"] == 3
        assert update["active"] == []
    finally:
        resp.close()


def test_metrics_are_prometheus_text_with_the_counts_of_the_run(http, make_stream):
    s = make_stream()
    lines = s.ssc.queueStream([["a", "b"], ["c"], ["d", "e", "f"]])

    def fail_second(rdd):
        if rdd.count() == 1:
            raise RuntimeError("sink down")

    lines.foreachRDD(lambda rdd: (rdd.count(), s.clock.advance(0.3)))
    lines.foreachRDD(fail_second)
    s.ssc.start()
    advance_batches(s.ssc, 3)

    status, ctype, body = http.get(f"{s.base}/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body)}
    app = s.ui.settings.app_id

    def value(family, sample_name, **labels):
        wanted = {"app_id": app, **labels}
        found = [x.value for x in families[family].samples
                 if x.name == sample_name and x.labels == wanted]
        assert len(found) == 1, (family, sample_name, labels, families[family].samples)
        return found[0]

    assert families["ember_streaming_batches_completed"].type == "counter"
    assert value("ember_streaming_batches_completed", "ember_streaming_batches_completed_total") == 3
    assert value("ember_streaming_batches_failed", "ember_streaming_batches_failed_total") == 1
    assert value("ember_streaming_batches_queued", "ember_streaming_batches_queued") == 0
    assert value("ember_streaming_records_processed",
                 "ember_streaming_records_processed_total") == 6
    name = s.ui.store.snapshot().stream_names[lines.id]
    assert value("ember_streaming_records_received", "ember_streaming_records_received_total",
                 stream_id=str(lines.id), stream_name=name) == 6
    proc = "ember_streaming_processing_delay_seconds"
    assert families[proc].type == "histogram"
    assert value(proc, proc + "_count") == 3
    assert value(proc, proc + "_sum") == 0.9
    assert value(proc, proc + "_bucket", le="0.25") == 0
    assert value(proc, proc + "_bucket", le="0.5") == 3
    assert value(proc, proc + "_bucket", le="+Inf") == 3
    sched = "ember_streaming_scheduling_delay_seconds"
    assert value(sched, sched + "_count") == 3 and value(sched, sched + "_sum") == 0


def test_metrics_use_a_registry_per_server_not_the_global_one(http, make_stream):
    from prometheus_client import REGISTRY

    s = make_stream()
    s.ssc.queueStream([[1]]).foreachRDD(lambda rdd: rdd.count())
    s.ssc.start()
    advance_batches(s.ssc, 1)
    assert http.get(f"{s.base}/metrics")[0] == 200
    assert REGISTRY.get_sample_value("ember_streaming_batches_completed_total",
                                     {"app_id": s.ui.settings.app_id}) is None


class BlocksReceiver(Receiver):
    """Stores two blocks (5 and 3 records) as it starts, then reports an error."""

    def name(self) -> str:
        return "BlocksReceiver"

    def onStart(self) -> None:
        self.storeMany([f"r{i}" for i in range(5)])
        self.storeMany(["x", "y", "z"])
        try:
            raise ConnectionError("broker went away")
        except ConnectionError as exc:
            self.reportError("lost the broker connection", exc)

    def onStop(self) -> None:
        pass


def test_receivers_show_status_records_rate_and_last_error(http, make_stream):
    s = make_stream()
    received = s.ssc.receiverStream(BlocksReceiver())
    received.foreachRDD(lambda rdd: rdd.count())
    pulled = s.ssc.queueStream([["q"], ["q", "q"]])
    pulled.foreachRDD(lambda rdd: rdd.count())
    s.ssc.start()
    advance_batches(s.ssc, 2)

    receivers = http.json(f"{s.api}/receivers")
    assert [r["streamId"] for r in receivers] == [received.id, pulled.id]
    rec = receivers[0]
    assert rec["streamName"] == "BlocksReceiver"
    assert rec["isActive"] is True
    assert rec["executorId"] == "driver" and rec["executorHost"] == "driver"
    assert rec["numRecordsReceived"] == 8
    assert rec["eventRates"] == [[s.t1, 8000.0 / 1000], [s.t1 + 1000, 0.0]]
    assert rec["avgEventRate"] == 4.0
    assert rec["lastErrorMessage"] == "lost the broker connection"
    assert "ConnectionError: broker went away" in rec["lastError"]
    assert rec["lastErrorTime"] == "2023-11-14T22:13:20.000GMT"
    pull = receivers[1]
    assert "isActive" not in pull  # a pull source has no receiver
    assert pull["numRecordsReceived"] == 3
    assert http.json(f"{s.api}/receivers/{received.id}") == rec

    stats = http.json(f"{s.api}/statistics")
    assert (stats["numReceivers"], stats["numActiveReceivers"],
            stats["numInactiveReceivers"]) == (1, 1, 0)
    assert stats["numReceivedRecords"] == 11


def test_a_stopped_receiver_is_inactive(make_stream):
    s = make_stream()
    received = s.ssc.receiverStream(BlocksReceiver())
    received.foreachRDD(lambda rdd: rdd.count())
    s.ssc.start()
    advance_batches(s.ssc, 1)
    store = s.ui.store
    assert store.snapshot().receivers[received.id].active is True
    s.ssc.stop(stopSparkContext=False)
    assert store.snapshot().receivers[received.id].active is False


def test_pages_and_assets_are_served_by_the_plugin_itself(http, make_stream):
    s = make_stream()
    s.ssc.queueStream([[1]]).foreachRDD(lambda rdd: rdd.count())
    s.ssc.start()
    advance_batches(s.ssc, 1)
    status, ctype, body = http.get(f"{s.base}/streaming/batch/?id={s.t1}")
    assert status == 200 and 'data-page="batch"' in body
    assert "http://" not in body.replace(s.base, "") and "https://" not in body  # no CDN
    status, ctype, js = http.get(f"{s.base}/static/ui.js")
    assert status == 200 and ctype.startswith("text/javascript")
    assert "EventSource" in js and "createElementNS" in js
    assert "https://" not in js
    status, ctype, _css = http.get(f"{s.base}/static/ui.css")
    assert status == 200 and ctype.startswith("text/css")
    assert http.get(f"{s.base}/static/favicon.svg")[1] == "image/svg+xml"
    assert http.get(f"{s.base}/static/../__init__.py")[0] == 404
    assert http.get(f"{s.base}/static/nothing.js")[0] == 404
    status, _, body = http.get(f"{s.base}/")  # redirected to the statistics page
    assert status == 200 and 'data-page="statistics"' in body


def test_hooks_never_wait_for_a_slow_http_client(make_stream):
    """A client that opens the event stream and never reads does not hold up batches."""
    s = make_stream()
    s.ssc.queueStream([[i] for i in range(30)]).foreachRDD(lambda rdd: rdd.count())
    s.ssc.start()
    conn = http.client.HTTPConnection("127.0.0.1", s.ui.server.port, timeout=20)
    conn.request("GET", "/streaming/events")  # never read
    done = threading.Event()

    def run():
        advance_batches(s.ssc, 30)
        done.set()

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    conn.close()
    assert done.is_set()
    assert s.ui.store.snapshot().total_completed == 30
