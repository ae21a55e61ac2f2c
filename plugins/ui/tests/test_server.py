"""The server's life: where it listens, port fallback, switching it off, stopping cleanly."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading

import ember_ui
import pytest
from ember import Conf, Context
from ember.testing import advance_batches, free_port
from ember_ui._server import UIServer
from ember_ui._store import StreamingStore


def ui_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ember-ui-server"]


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def simple_stream(s, batches=([1, 2], [3])):
    s.ssc.queueStream([list(b) for b in batches]).foreachRDD(lambda rdd: rdd.count())


def test_the_ui_listens_on_loopback_and_logs_its_url(http, make_stream, caplog):
    s = make_stream()
    simple_stream(s)
    with caplog.at_level(logging.INFO, logger="ember.ui"):
        s.ssc.start()
    ui = s.ui
    assert ui.settings.host == "127.0.0.1"
    assert ui.server._sock.getsockname()[0] == "127.0.0.1"  # never beyond loopback
    assert ui.url == f"http://127.0.0.1:{ui.server.port}/streaming/"
    assert f"ember UI: streaming statistics at {ui.url}" in caplog.messages
    status, ctype, body = http.get(ui.url)
    assert status == 200 and ctype.startswith("text/html")
    assert '<script src="/static/ui.js">' in body and 'data-page="statistics"' in body


def test_defaults_are_declared_through_the_config_hook():
    with Context("inline", "defaults") as sc:
        conf = sc.getConf()
        assert conf.getBoolean("ember.ui.enabled") is True
        assert conf.getInt("ember.ui.port") == 4040
        assert conf.get("ember.ui.host") == "127.0.0.1"
        assert conf.getInt("ember.ui.retainedBatches") == 1000
        assert conf.getInt("spark.ui.port") == 4040  # Spark's spelling is an alias


def test_a_taken_port_falls_back_to_the_next_free_one(http, make_stream, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        s = make_stream(conf={"ember.ui.port": port})
        simple_stream(s)
        with caplog.at_level(logging.INFO, logger="ember.ui"):
            s.ssc.start()
        got = s.ui.server.port
        assert port < got <= port + 16
        assert f"ember UI: port {port} is taken, trying {port + 1}" in caplog.messages
        advance_batches(s.ssc, 1)
        assert http.json(f"{s.api}/statistics")["numTotalCompletedBatches"] == 1


def test_ui_disabled_by_configuration_starts_nothing(make_stream):
    port = free_port()
    s = make_stream(conf={"ember.ui.enabled": "false", "ember.ui.port": port})
    simple_stream(s)
    s.ssc.start()
    advance_batches(s.ssc, 2)
    assert ember_ui.current_ui() is None
    assert ui_threads() == []
    assert refused(port)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ember.ui.port", "http", "ember.ui.port must be a whole number"),
        ("ember.ui.port", 70000, "ember.ui.port must be a TCP port"),
        ("ember.ui.retainedBatches", 0, "ember.ui.retainedBatches must be at least 1"),
        ("ember.ui.enabled", "maybe", "ember.ui.enabled must be true or false"),
    ],
)
def test_bad_settings_are_refused_when_the_context_is_made(key, value, message):
    with pytest.raises(ValueError, match=message):
        Context("inline", "bad", Conf().set(key, value))
    Context("inline", "next").stop()  # nothing was left half started


def test_stopping_leaves_no_thread_and_closes_the_port_even_with_a_live_event_stream(
        ember_no_leaks, http, make_stream, ember_master):
    s = make_stream(ember_master)
    simple_stream(s)
    s.ssc.start()
    advance_batches(s.ssc, 1)
    port = s.ui.server.port
    conn = http_client_events(port)
    assert read_event(conn)[0] == "update"
    s.ssc.stop(stopSparkContext=False)
    assert ui_threads() == []
    assert refused(port)
    assert ember_ui.current_ui() is None
    events = [read_event(conn) for _ in range(2)]
    assert [e[0] for e in events] == ["update", "end"]
    assert events[0][1]["stopTime"] is not None
    conn.close()


def test_a_new_streaming_context_on_the_same_context_gets_a_fresh_ui(http, make_stream):
    s = make_stream()
    simple_stream(s)
    s.ssc.start()
    advance_batches(s.ssc, 2)
    first = s.ui
    s.ssc.stop(stopSparkContext=False)
    from ember.streaming import StreamingContext
    from ember.testing import ManualClock

    ssc2 = StreamingContext(s.sc, 1.0, clock=ManualClock(2_000_000_000))
    ssc2.queueStream([[1]]).foreachRDD(lambda rdd: rdd.count())
    ssc2.start()
    try:
        advance_batches(ssc2, 1)
        second = ember_ui.current_ui()
        assert second is not None and second is not first
        assert second.settings.app_id == first.settings.app_id  # same application
        stats = http.json(f"{second.base_url}/api/v1/applications/{second.settings.app_id}"
                          f"/streaming/statistics")
        assert stats["numTotalCompletedBatches"] == 1
    finally:
        ssc2.stop(stopSparkContext=False)


def test_a_server_stopped_at_once_after_starting_ends_its_thread(ember_no_leaks):
    server = UIServer(StreamingStore(10, "app-1"), "127.0.0.1", 0)
    server.start()
    server.stop()
    assert not server.running
    assert refused(server.port)
    server.stop()  # twice is fine


def test_the_ui_stops_with_the_context_when_the_streaming_context_was_not_stopped(
        ember_no_leaks):
    from ember.streaming import StreamingContext
    from ember.testing import ManualClock

    sc = Context("inline", "forgotten", Conf().set("ember.ui.port", 0))
    ssc = StreamingContext(sc, 1.0, clock=ManualClock(10))
    ssc.queueStream([[1]]).foreachRDD(lambda rdd: rdd.count())
    ssc.start()
    port = ember_ui.current_ui().server.port
    sc.stop()  # the Context stopped under a running stream
    assert ui_threads() == []
    assert refused(port)
    ssc.stop(stopSparkContext=False)


# --------------------------------------------------------------------------- helpers


def http_client_events(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("GET", "/streaming/events")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    conn._ember_resp = resp  # type: ignore[attr-defined]
    return conn


def read_event(conn: http.client.HTTPConnection) -> tuple[str, dict]:
    """The next ``(event name, data)`` of a server-sent event stream (comments skipped)."""
    resp = conn._ember_resp  # type: ignore[attr-defined]
    name, data = "message", []
    while True:
        line = resp.fp.readline().decode()
        if line == "":
            raise EOFError("the event stream ended")
        line = line.rstrip("\n")
        if not line:
            if data:
                return name, json.loads("\n".join(data))
            name = "message"
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
