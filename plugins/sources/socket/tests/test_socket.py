"""ember-socket's behaviour, end to end on real sockets: servers on 127.0.0.1 started by the
tests, streams driven batch by batch by a manual clock."""

from __future__ import annotations

import random
import struct
import threading
import time

import psutil
import pytest
from ember.plugins import load_component
from ember.sources import Delivery
from ember_socket import DEFAULT_MAX_LINE_LENGTH, SocketSource, SocketTextReceiver

MiB = 1024 * 1024


def _lines(n: int, prefix: str = "line") -> list[str]:
    return [f"{prefix} {i} ünïcödé ✓ {'x' * (i % 37)}" for i in range(n)]


def _cut_randomly(data: bytes, rng: random.Random, most: int = 700) -> list[bytes]:
    """``data`` in pieces of random sizes, cut anywhere (inside lines and characters)."""
    pieces, i = [], 0
    while i < len(data):
        n = rng.randint(1, most)
        pieces.append(data[i:i + n])
        i += n
    return pieces


class _PeakRSS:
    """The peak RSS growth of this process while the block runs (sampled every 5 ms)."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._done = threading.Event()
        self.base = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / MiB


# --------------------------------------------------------------------------- plugin


def test_the_socket_entry_point_is_the_socket_source():
    assert load_component("sources", "socket") is SocketSource
    assert SocketSource.delivery is Delivery.AT_MOST_ONCE


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"hostname": "", "port": 9999}, ValueError, "host name"),
        ({"hostname": "localhost", "port": 0}, ValueError, "port"),
        ({"hostname": "localhost", "port": 70000}, ValueError, "port"),
        ({"hostname": "localhost", "port": "9999"}, ValueError, "port"),
        ({"hostname": "localhost", "port": 1, "errors": "ignore"}, ValueError, "'replace'"),
        ({"hostname": "localhost", "port": 1, "maxLineLength": 0}, ValueError, "maxLineLength"),
        ({"hostname": "localhost", "port": 1, "readChunkSize": -1}, ValueError, "readChunkSize"),
        ({"hostname": "localhost", "port": 1, "connectTimeout": 0}, ValueError, "connectTimeout"),
        ({"hostname": "localhost", "port": 1, "converter": "lines"}, TypeError, "converter"),
        ({"hostname": "localhost", "port": 1, "restartDelay": 5, "maxRestartDelay": 1},
         ValueError, "maxRestartDelay"),
        ({"hostname": "localhost", "port": 1, "storageLevel": "MEMORY"}, TypeError,
         "StorageLevel"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options, error, words):
    with pytest.raises(error, match=words):
        SocketSource(**options)


def test_restart_delay_doubles_up_to_the_maximum():
    src = SocketSource("localhost", 1, restartDelay=0.25, maxRestartDelay=1.5)
    assert [src.restart_delay(n) for n in range(1, 6)] == [0.25, 0.5, 1.0, 1.5, 1.5]
    assert SocketSource("localhost", 1).restart_delay(2, default=0.1) == 0.2


def test_the_receiver_decodes_with_the_configured_policy():
    receiver = SocketSource("localhost", 1, errors="strict").createReceiver()
    assert isinstance(receiver, SocketTextReceiver)
    assert receiver.text_errors == "strict"
    assert receiver.name() == "SocketTextReceiver(localhost:1)"


# --------------------------------------------------------------------------- delivery


def test_lines_arrive_complete_and_in_order(ember_no_leaks, stream_test, servers):
    server = servers()
    stream_test.collect(stream_test.ssc.socketTextStream("127.0.0.1", server.port,
                                                         readChunkSize=4096))
    stream_test.start()
    sent = _lines(3000)
    data = ("\n".join(sent) + "\n").encode("utf-8")
    for piece in _cut_randomly(data, random.Random(5)):
        server.send_bytes(piece)
    got = stream_test.run_until_records(len(sent))
    assert got == sent
    assert stream_test.events.errors == []
    stream_test.stop()
    server.wait_client_gone()  # stop closed the receiver's socket


def test_crlf_line_ends_are_line_ends_as_in_spark(ember_no_leaks, stream_test, servers):
    server = servers()
    stream_test.collect(stream_test.ssc.socketTextStream("127.0.0.1", server.port))
    stream_test.start()
    # a telnet or Windows peer: the \r is not part of the line; a lone \r stays in it
    server.send_bytes(b"to be\r\nor not\r\n")
    server.send_bytes(b"\r\nto\rbe\n")
    got = stream_test.run_until_records(4)
    assert got == ["to be", "or not", "", "to\rbe"]
    stream_test.stop()


def test_a_clean_end_of_stream_delivers_the_last_unterminated_line(ember_no_leaks, stream_test,
                                                                     servers):
    server = servers()
    stream_test.collect(stream_test.ssc.socketTextStream("127.0.0.1", server.port,
                                                         restartDelay=30))
    stream_test.start()
    server.send_bytes(b"first\nsecond\nno line break at the end")
    server.wait_connections(1)
    server.fail()
    got = stream_test.run_until_records(3)
    assert got == ["first", "second", "no line break at the end"]
    stream_test.events.wait(lambda: stream_test.events.errors != [], "the restart")
    assert "closed the connection" in stream_test.events.error_messages()[0]
    stream_test.stop()


def test_several_receivers_unioned_deliver_every_line_exactly(ember_no_leaks, stream_test,
                                                               servers):
    # The guide's "Level of Parallelism in Data Receiving": one receiver per server, unioned.
    ssc = stream_test.ssc
    group = [servers() for _ in range(3)]
    streams = [ssc.socketTextStream("127.0.0.1", s.port, readChunkSize=8192) for s in group]
    stream_test.collect(ssc.union(*streams))
    stream_test.start()
    sent = {i: _lines(1500, prefix=f"server{i}") for i in range(len(group))}
    for i, server in enumerate(group):
        server.send(sent[i])
    total = sum(len(v) for v in sent.values())
    got = stream_test.run_until_records(total)
    assert sorted(got) == sorted(line for lines in sent.values() for line in lines)
    for i in sent:  # each receiver's lines in the order its server sent them
        assert [line for line in got if line.startswith(f"server{i} ")] == sent[i]
    stream_test.stop()


# --------------------------------------------------------------------------- bad input


def test_binary_noise_becomes_replacement_characters_and_good_lines_survive(inline_stream_test,
                                                                             servers):
    server = servers()
    inline_stream_test.collect(inline_stream_test.ssc.socketTextStream("127.0.0.1", server.port))
    inline_stream_test.start()
    rng = random.Random(3)
    noise = bytes(rng.randrange(256) for _ in range(64 * 1024)).replace(b"\n", b"\xff")
    server.send(["before 1", "before 2"])
    server.send_bytes(noise[:30000] + b"\n" + noise[30000:] + b"\n")
    server.send(["after 1", "after 2"])
    got = inline_stream_test.run_until_records(6)
    assert got[:2] == ["before 1", "before 2"] and got[-2:] == ["after 1", "after 2"]
    assert len(got) == 6
    assert all("\ufffd" in line for line in got[2:4])
    assert got[2:4] == [noise[:30000].decode("utf-8", "replace"),
                        noise[30000:].decode("utf-8", "replace")]
    inline_stream_test.stop()


def test_strict_decoding_fails_the_batch_with_unicode_decode_error(stream_test, servers):
    server = servers()
    stream = stream_test.ssc.socketTextStream("127.0.0.1", server.port, errors="strict")
    stream_test.collect(stream)
    stream_test.start()
    server.send_bytes(b"fine\n\xff\xfe not utf-8\n")
    deadline = time.monotonic() + 20
    failed = []
    while not failed:
        assert time.monotonic() < deadline, "no batch failed"
        stream_test.run_until(lambda: True, "a batch")
        failed = [b for b in stream_test.events.batches if b.numRecords() and b.failed]
    reason = next(iter(failed[0].outputOperationInfos().values())).failureReason()
    assert "UnicodeDecodeError" in reason
    with pytest.raises(UnicodeDecodeError):
        stream_test.ssc.awaitTerminationOrTimeout(5)
    stream_test.stop()


def test_a_multibyte_character_cut_between_reads_is_decoded_whole(inline_stream_test, servers):
    server = servers()
    stream = inline_stream_test.ssc.socketTextStream(
        "127.0.0.1", server.port, readChunkSize=1, errors="strict"
    )
    inline_stream_test.collect(stream)
    inline_stream_test.start()
    sent = ["héllo wörld", "✓ → 😀 ünïcödé", "日本語のテキスト"]
    server.send_bytewise(("\n".join(sent) + "\n").encode("utf-8"))
    assert inline_stream_test.run_until_records(3) == sent
    inline_stream_test.ssc.awaitTerminationOrTimeout(0)  # no batch failed to decode
    inline_stream_test.stop()


@pytest.mark.parametrize(
    ("max_line", "bound_mib"),
    [(1 * MiB, 24), (DEFAULT_MAX_LINE_LENGTH, 96)],
    ids=["1MiB-guard", "default-64MiB-guard"],
)
def test_a_100_mb_line_is_dropped_and_reported_without_being_buffered(
    inline_stream_test, servers, max_line, bound_mib
):
    server = servers()
    stream = inline_stream_test.ssc.socketTextStream("127.0.0.1", server.port,
                                                     maxLineLength=max_line)
    inline_stream_test.collect(stream)
    inline_stream_test.start()
    server.send(["before"])
    assert inline_stream_test.run_until_records(1) == ["before"]
    block = b"x" * MiB
    with _PeakRSS() as mem:
        for _ in range(100):
            server.send_bytes(block)
        server.send_bytes(b"\nafter\n")
        inline_stream_test.run_until_records(2)
    assert inline_stream_test.records() == ["before", "after"]
    assert mem.growth_mib < bound_mib, f"memory grew by {mem.growth_mib:.0f} MiB"
    messages = inline_stream_test.events.error_messages()
    assert len(messages) == 1 and f"maxLineLength={max_line}" in messages[0]
    inline_stream_test.stop()


def test_a_line_at_the_limit_is_kept_and_one_byte_more_is_dropped(inline_stream_test, servers):
    server = servers()
    stream = inline_stream_test.ssc.socketTextStream("127.0.0.1", server.port, maxLineLength=100,
                                                     readChunkSize=7)
    inline_stream_test.collect(stream)
    inline_stream_test.start()
    server.send(["a" * 100, "b" * 101, "c" * 100, "short"])
    got = inline_stream_test.run_until_records(3)
    assert got == ["a" * 100, "c" * 100, "short"]
    assert len(inline_stream_test.events.errors) == 1
    inline_stream_test.stop()


# --------------------------------------------------------------------------- connections


def test_a_silent_peer_does_not_hold_up_stop(ember_no_leaks, stream_test, servers):
    server = servers()
    stream_test.collect(stream_test.ssc.socketTextStream("127.0.0.1", server.port))
    stream_test.start()
    server.wait_connections(1)
    stream_test.run_until(lambda: True, "a batch")
    took = stream_test.stop()
    assert took < 5, f"stop took {took:.1f} s"
    assert len(stream_test.events.stopped) == 1
    assert stream_test.events.errors == []
    server.wait_client_gone()


def test_a_reset_mid_line_is_reported_and_the_partial_line_dropped(ember_no_leaks,
                                                                    inline_stream_test, servers):
    server = servers()
    stream = inline_stream_test.ssc.socketTextStream("127.0.0.1", server.port,
                                                     restartDelay=0.05)
    inline_stream_test.collect(stream)
    inline_stream_test.start()
    server.send_bytes(b"one\ntwo\npart")
    assert inline_stream_test.run_until_records(2) == ["one", "two"]
    server.reset()
    server.send(["three"])  # kept for the reconnection
    got = inline_stream_test.run_until_records(3)
    assert got == ["one", "two", "three"]
    (message, *_) = inline_stream_test.events.error_messages()
    assert "ConnectionResetError" in message
    assert "a partial line of 4 bytes was dropped" in message
    assert server.connections == 2
    inline_stream_test.stop()


def test_a_refused_connection_is_retried_with_backoff_until_the_server_appears(
    ember_no_leaks, ember_free_port, inline_stream_test, servers
):
    stream = inline_stream_test.ssc.socketTextStream(
        "127.0.0.1", ember_free_port, restartDelay=0.05, maxRestartDelay=0.2
    )
    inline_stream_test.collect(stream)
    inline_stream_test.start()
    events = inline_stream_test.events
    events.wait(lambda: len(events.errors) >= 3, "three failed connections")
    messages = events.error_messages()
    assert all("could not connect to 127.0.0.1" in m for m in messages)
    assert "refused" in messages[0].lower()
    assert [m.rsplit("reconnecting in ", 1)[1] for m in messages[:3]] == [
        "0.05 s", "0.1 s", "0.2 s"
    ]
    server = servers(ember_free_port)
    server.send(["at last", "the server is up"])
    assert inline_stream_test.run_until_records(2) == ["at last", "the server is up"]
    inline_stream_test.stop()


def test_the_backoff_starts_over_once_data_arrives(inline_stream_test, servers):
    server = servers()
    stream = inline_stream_test.ssc.socketTextStream("127.0.0.1", server.port,
                                                     restartDelay=0.05, maxRestartDelay=5)
    inline_stream_test.collect(stream)
    inline_stream_test.start()
    events = inline_stream_test.events
    for n in range(1, 4):
        server.send([f"round {n}"])
        inline_stream_test.run_until_records(n)
        server.fail()
        events.wait(lambda n=n: len(events.errors) >= n, f"restart {n}")
    delays = [m.rsplit("reconnecting in ", 1)[1] for m in events.error_messages()]
    assert delays == ["0.05 s"] * 3
    inline_stream_test.stop()


def test_stop_during_a_long_restart_wait_is_prompt(ember_no_leaks, stream_test, servers):
    server = servers()
    stream_test.collect(stream_test.ssc.socketTextStream("127.0.0.1", server.port,
                                                         restartDelay=60))
    stream_test.start()
    server.wait_connections(1)
    server.fail()
    events = stream_test.events
    events.wait(lambda: len(events.errors) >= 1, "the restart")
    took = stream_test.stop()
    assert took < 5, f"stop took {took:.1f} s"


# --------------------------------------------------------------------------- converter


def _int64s(f):
    """A converter: big-endian 8-byte integers."""
    while True:
        data = f.read(8)
        if len(data) < 8:
            return
        yield struct.unpack(">q", data)[0]


def test_socket_stream_stores_the_records_of_the_converter(ember_no_leaks, stream_test,
                                                           servers):
    server = servers()
    stream_test.collect(stream_test.ssc.socketStream("127.0.0.1", server.port, _int64s))
    stream_test.start()
    sent = list(range(25_000))
    data = b"".join(struct.pack(">q", n) for n in sent)
    for piece in _cut_randomly(data, random.Random(9), most=5000):
        server.send_bytes(piece)
    assert stream_test.run_until_records(len(sent)) == sent
    stream_test.stop()


def test_converter_records_are_stored_while_the_stream_is_idle(inline_stream_test, servers):
    server = servers()
    inline_stream_test.collect(
        inline_stream_test.ssc.socketStream("127.0.0.1", server.port, _int64s)
    )
    inline_stream_test.start()
    server.send_bytes(struct.pack(">qqq", 1, 2, 3))  # then nothing: the connection stays open
    assert inline_stream_test.run_until_records(3) == [1, 2, 3]
    inline_stream_test.stop()


def test_a_failing_converter_is_reported_and_restarted_keeping_its_records(inline_stream_test,
                                                                           servers):
    def until_zero(f):
        for n in _int64s(f):
            if n == 0:
                raise ValueError("zero is not allowed")
            yield n

    server = servers()
    stream = inline_stream_test.ssc.socketStream("127.0.0.1", server.port, until_zero,
                                                 restartDelay=0.05)
    inline_stream_test.collect(stream)
    inline_stream_test.start()
    server.send_bytes(struct.pack(">qqq", 7, 8, 0))
    server.wait_connections(1)
    server.wait_connections(2)  # the receiver restarted after the converter failed
    server.send_bytes(struct.pack(">q", 9))
    assert inline_stream_test.run_until_records(3) == [7, 8, 9]
    (message, *_) = inline_stream_test.events.error_messages()
    assert "ValueError: zero is not allowed" in message
    inline_stream_test.stop()
