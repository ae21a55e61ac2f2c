"""ember-zeromq's behaviour against real ZeroMQ sockets on 127.0.0.1 (and ipc://) created by
the tests: multipart messages, subscriptions, bytesToObjects in the workers, failures and a
clean shutdown."""

from __future__ import annotations

import os
import pickle
import threading
import time

import pytest
import zmq
from ember.plugins import load_component
from ember.sources import Delivery
from ember.testing import free_port
from ember_zeromq import (
    ZeroMQReceiver,
    ZeroMQSource,
    ZeroMQUtils,
    frames_as_bytes,
    last_frame_as_text,
)

WAIT = 20.0


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# --------------------------------------------------------------------------- the plugin


def test_the_zeromq_entry_point_is_the_zeromq_source():
    assert load_component("sources", "zeromq") is ZeroMQSource
    assert ZeroMQSource.delivery is Delivery.AT_MOST_ONCE


@pytest.mark.parametrize(
    ("args", "options", "error", "words"),
    [
        (("127.0.0.1:5555", b"", frames_as_bytes), {}, ValueError, "tcp://127.0.0.1:5555"),
        (("inproc://x", b"", frames_as_bytes), {}, ValueError, "tcp:// or ipc://"),
        (("tcp://", b"", frames_as_bytes), {}, ValueError, "names no address"),
        (("tcp://h:1", [], frames_as_bytes), {}, ValueError, "at least one topic prefix"),
        (("tcp://h:1", [1], frames_as_bytes), {}, TypeError, "bytes or str"),
        (("tcp://h:1", b"", "not callable"), {}, TypeError, "bytesToObjects"),
        (("tcp://h:1", b"", frames_as_bytes), {"receiveHighWaterMark": -1}, ValueError,
         "receiveHighWaterMark"),
        (("tcp://h:1", b"", frames_as_bytes), {"restartDelay": -1}, ValueError, "restartDelay"),
    ],
)
def test_bad_options_are_refused_when_the_stream_is_made(args, options, error, words):
    with pytest.raises(error, match=words):
        ZeroMQSource(*args, **options)


def test_the_source_pickles_and_names_its_publisher():
    source = ZeroMQSource("tcp://127.0.0.1:5555", ["a", b"b"], last_frame_as_text)
    assert source.subscribe == (b"a", b"b")
    assert pickle.loads(pickle.dumps(source)) == source
    receiver = source.createReceiver()
    assert isinstance(receiver, ZeroMQReceiver)
    assert receiver.name() == "ZeroMQReceiver(tcp://127.0.0.1:5555)"
    assert receiver.pending == 0 and receiver.isStopped()


# --------------------------------------------------------------------------- messages


def test_multipart_messages_reach_bytes_to_objects_as_lists_of_frames(publishers,
                                                                      stream_test):
    publisher = publishers()
    t = stream_test()

    def explode(frames):  # every frame after the topic becomes a record; b"skip" none
        return [] if frames[1] == b"skip" else [f.decode() for f in frames[1:]]

    t.collect(ZeroMQUtils.createStream(t.ssc, publisher.endpoint, b"", explode))
    kept = []
    ZeroMQUtils.createStream(t.ssc, publisher.endpoint, b"", frames_as_bytes).foreachRDD(
        lambda rdd: kept.extend(rdd.collect()))
    t.ssc.start()
    publisher.send([[b"t", b"a", b"b", b"c"], [b"t", b"skip"], [b"t", b"d"], [b"t", b""]])
    t.run_until(lambda: len(kept) >= 4, "every message")
    assert t.records() == ["a", "b", "c", "d", ""]
    assert kept == [[b"t", b"a", b"b", b"c"], [b"t", b"skip"], [b"t", b"d"], [b"t", b""]]


def test_only_messages_under_the_subscribed_prefixes_arrive(publishers, stream_test):
    publisher = publishers()
    t = stream_test()
    t.collect(ZeroMQSource(publisher.endpoint, ["prices.", b"news"],
                           last_frame_as_text).createStream(t.ssc))
    t.ssc.start()
    publisher.send([[b"prices.eur", b"1"], [b"weather", b"2"], [b"news", b"3"],
                    [b"price", b"4"], [b"newsflash", b"5"], [b"prices.usd", b"6"]])
    t.run_until(lambda: len(t.records()) >= 4, "the subscribed messages")
    publisher.send([[b"news", b"end"]])
    t.run_until(lambda: "end" in t.records(), "the last message")
    assert t.records() == ["1", "3", "5", "6", "end"]


def test_bytes_to_objects_runs_in_the_workers(publishers, stream_test):
    publisher = publishers()
    t = stream_test("local[2]")
    t.collect(ZeroMQUtils.createStream(t.ssc, publisher.endpoint, b"",
                                       lambda frames: [(frames[0].decode(), os.getpid())]))
    t.ssc.start()
    publisher.send([[b"m"]] * 20)
    got = t.run_until_count(20)
    assert {name for name, _ in got} == {"m"}
    assert os.getpid() not in {pid for _, pid in got}, "the driver made the records"


def test_a_plain_pub_socket_over_ipc(tmp_path, stream_test):
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.setsockopt(zmq.SNDHWM, 0)  # a PUB drops beyond its high-water mark (1000 by default)
    endpoint = f"ipc://{tmp_path}/feed.sock"
    pub.bind(endpoint)
    try:
        t = stream_test()
        t.collect(ZeroMQUtils.createStream(t.ssc, endpoint, b"", last_frame_as_text))
        t.ssc.start()
        # A PUB socket drops what it sends before the subscription reached it (ZeroMQ's
        # "slow joiner"): send a probe until one arrives, then the real messages.
        deadline = time.monotonic() + WAIT
        while "probe" not in t.records():
            assert time.monotonic() < deadline, t.events.error_messages()
            pub.send_multipart([b"", b"probe"])
            t.run_until(lambda: True, "a batch")
        sent = [f"m{i}" for i in range(1000)]
        for m in sent:
            pub.send_multipart([b"", m.encode()])
        t.run_until(lambda: len([r for r in t.records() if r != "probe"]) >= len(sent),
                    "every message")
        assert [r for r in t.records() if r != "probe"] == sent
    finally:
        pub.close()
        ctx.term()


# --------------------------------------------------------------------------- failures


def test_a_publisher_that_is_not_there_yet_is_retried_with_a_backoff(publishers, stream_test):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    t = stream_test()
    t.collect(ZeroMQSource(endpoint, b"", last_frame_as_text, restartDelay=0.02,
                           maxRestartDelay=0.08).createStream(t.ssc))
    t.ssc.start()
    t.events.wait(lambda: len(t.events.errors) >= 4, "four failed attempts")
    messages = t.events.error_messages()
    assert all(m.startswith(f"could not connect to the publisher at {endpoint}")
               for m in messages)
    assert [m.rsplit("reconnecting in ", 1)[1] for m in messages[:4]] == [
        "0.02 s", "0.04 s", "0.08 s", "0.08 s"]
    publisher = publishers(endpoint)
    publisher.send([[b"", b"finally"]])
    t.run_until(lambda: t.records() == ["finally"], "the first message")


def test_a_lost_publisher_is_reported_and_the_receiver_reconnects(publishers, stream_test):
    publisher = publishers()
    t = stream_test()
    t.collect(ZeroMQSource(publisher.endpoint, b"", last_frame_as_text).createStream(t.ssc))
    t.ssc.start()
    publisher.send([[b"", b"before"]])
    t.run_until(lambda: t.records() == ["before"], "the first message")
    publisher.restart()
    publisher.send([[b"", b"after"]])  # kept until the receiver subscribed again
    t.run_until(lambda: t.records() == ["before", "after"], "the message after the restart")
    assert any("the connection to the publisher" in m and "was lost" in m
               for m in t.events.error_messages())
    assert len(t.events.started) == 2


# --------------------------------------------------------------------------- stopping


def test_graceful_stop_stores_what_the_receiver_still_held(publishers, stream_test):
    publisher = publishers()
    t = stream_test(block_interval="60s")  # no block is cut by time
    t.collect(ZeroMQSource(publisher.endpoint, b"", last_frame_as_text).createStream(t.ssc))
    t.ssc.start()
    sent = [f"held-{i}" for i in range(50)]
    publisher.send([[b"", m.encode()] for m in sent])
    receiver = t.ssc._graph.inputs[0].receiver
    deadline = time.monotonic() + WAIT
    while receiver.pending < len(sent):
        assert time.monotonic() < deadline, f"{receiver.pending} messages held"
        time.sleep(0.01)
    t.ssc.stop(stopSparkContext=True, stopGraceFully=True)
    assert t.records() == sent


@pytest.mark.parametrize("when", ["flooding", "restarting"])
def test_stop_closes_sockets_and_context_and_joins_the_thread(ember_no_leaks, publishers,
                                                              stream_test, when):
    publisher = publishers()
    fds = _open_fds()
    t = stream_test()
    t.collect(ZeroMQSource(publisher.endpoint, b"", frames_as_bytes,
                           restartDelay=30).createStream(t.ssc))
    t.ssc.start()
    publisher.wait_subscribed()
    stop_flood = threading.Event()
    flood = None
    if when == "flooding":
        def run() -> None:
            while not stop_flood.is_set():
                publisher.send([[b"", b"x" * 100]] * 100)

        flood = threading.Thread(target=run)
        flood.start()
        t.run_until(lambda: len(t.records()) > 1000, "a flood")
    else:
        publisher.restart()
        t.events.wait(lambda: t.events.errors, "the loss")  # now waiting 30 s to restart
    started = time.monotonic()
    t.ssc.stop(stopSparkContext=True)
    took = time.monotonic() - started
    stop_flood.set()
    if flood is not None:
        flood.join()
    assert took < 5, f"the stop took {took:.1f} s"
    receiver = t.ssc._graph.inputs[0].receiver
    assert receiver._session is None
    deadline = time.monotonic() + WAIT
    while _open_fds() > fds:  # ZeroMQ closes its descriptors in its own I/O threads
        assert time.monotonic() < deadline, f"{_open_fds() - fds} descriptors left open"
        time.sleep(0.01)
