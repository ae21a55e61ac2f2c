"""ember-twitter's behaviour against a local server speaking the X API v2 streaming protocol:
authentication, fields, keep-alives, stalls, malformed lines, in-stream errors, the
platform's reconnection rules (linear, exponential, 429 reset times) and rule management."""

from __future__ import annotations

import pickle
import time

import pytest
from ember.plugins import load_component
from ember.sources import Delivery
from ember.testing import free_port
from ember_twitter import TwitterSource, TwitterUtils, XApiError

TOKEN = "test-token"
WAIT = 20.0


def _posts(prefix: str, n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"id": str(1000 + i), "text": f"{prefix} {i}"} for i in range(start, start + n)]


def _source(server, **options) -> TwitterSource:
    options.setdefault("bearerToken", TOKEN)
    return TwitterSource(baseUrl=server.url, **options)


def _delays(messages: list[str]) -> list[str]:
    return [m.rsplit("reconnecting in ", 1)[1] for m in messages if "reconnecting in" in m]


# --------------------------------------------------------------------------- the plugin


def test_the_twitter_entry_point_is_the_twitter_source():
    assert load_component("sources", "twitter") is TwitterSource
    assert TwitterSource.delivery is Delivery.AT_MOST_ONCE


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"stream": "firehose"}, ValueError, "'sample' or 'filtered'"),
        ({"filters": ["#a"], "stream": "sample"}, ValueError, "filtered stream"),
        ({"filters": [""]}, ValueError, "rule value"),
        ({"filters": [{"tag": "no value"}]}, ValueError, "non-empty 'value'"),
        ({"baseUrl": "api.x.com"}, ValueError, "http"),
        ({"backfillMinutes": 6}, ValueError, "0 to 5"),
        ({"stallTimeout": 0}, ValueError, "stallTimeout"),
        ({"bearerToken": ""}, ValueError, "bearerToken"),
    ],
)
def test_bad_options_are_refused_when_the_stream_is_made(options, error, words):
    options.setdefault("bearerToken", TOKEN)
    with pytest.raises(error, match=words):
        TwitterSource(**options)


def test_a_token_is_required_and_read_from_the_environment(monkeypatch):
    for name in ("X_BEARER_TOKEN", "TWITTER_BEARER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="X_BEARER_TOKEN"):
        TwitterSource()
    monkeypatch.setenv("TWITTER_BEARER_TOKEN", "from-env")
    source = TwitterSource(filters=["#ember"])
    assert source.bearerToken is None, "an environment token is read when the stream starts"
    assert pickle.loads(pickle.dumps(source)) == source
    secret = TwitterSource(bearerToken="s3cret-token")
    assert "s3cret-token" not in repr(secret)


def test_the_backoffs_follow_the_platform_rules():
    source = TwitterSource(bearerToken=TOKEN)
    assert [source.network_delay(n) for n in (1, 2, 3, 64, 65)] == [0.25, 0.5, 0.75, 16, 16]
    assert [source.http_delay(n) for n in (1, 2, 3, 7, 8)] == [5, 10, 20, 320, 320]
    assert source.rate_limit_delay(1, None, 0) == 60
    assert source.rate_limit_delay(2, None, 0) == 120
    assert source.rate_limit_delay(1, 1_000.5, 1_000.0) == 0.5


# --------------------------------------------------------------------------- the stream


def test_the_sampled_stream_sends_the_token_fields_and_expansions(x_server, stream_test,
                                                                   monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    t = stream_test()
    source = TwitterSource(baseUrl=x_server.url, tweetFields=["created_at", "lang"],
                           expansions="author_id", userFields=["username"])
    t.collect(source.createStream(t.ssc))
    t.ssc.start()
    includes = {"users": [{"id": "7", "username": "ember"}]}
    x_server.send(_posts("hello", 3), includes=includes)
    t.run_until(lambda: len(t.records()) >= 3, "three posts")
    assert t.records() == [{**p, "includes": includes} for p in _posts("hello", 3)]
    method, _path, params, headers = next(r for r in x_server.requests
                                         if r[1] == "/2/tweets/sample/stream")
    assert (method, headers["Authorization"]) == ("GET", f"Bearer {TOKEN}")
    assert params == {"tweet.fields": ["created_at,lang"], "expansions": ["author_id"],
                      "user.fields": ["username"]}


def test_keep_alives_keep_a_quiet_stream_up_and_a_stall_is_a_disconnection(x_server,
                                                                           stream_test):
    t = stream_test()
    t.collect(_source(x_server, stallTimeout=0.3, networkBackoffStep=0.05).createStream(t.ssc))
    t.ssc.start()
    x_server.send(_posts("first", 1))
    t.run_until(lambda: len(t.records()) == 1, "the first post")
    # 20 keep-alives, 0.05 s apart: three stall timeouts go by, and nothing is wrong
    x_server.wait_keepalives(x_server.keepalives + 20)
    assert t.events.error_messages() == []
    x_server.stall()  # silence: no post, no keep-alive
    t.events.wait(lambda: t.events.errors, "the stall")
    (message,) = t.events.error_messages()
    assert "stalled: no data and no keep-alive for 0.3 s" in message
    assert message.endswith("reconnecting in 0.05 s")
    x_server.send(_posts("after", 2))
    t.run_until(lambda: len(t.records()) == 3, "the posts after the stall")
    assert len(t.events.started) == 2 and x_server.connections == 2


def test_malformed_lines_are_reported_and_skipped_and_the_stream_goes_on(x_server,
                                                                        stream_test):
    t = stream_test()
    t.collect(_source(x_server).createStream(t.ssc))
    t.ssc.start()
    x_server.send(_posts("a", 2))
    x_server.send_line(b'{"data": {"id": "1", "text": "cut sh')
    x_server.send_line(b"[1, 2, 3]")
    x_server.send_line(b'{"meta": "neither data nor errors"}')
    x_server.send(_posts("b", 2))
    t.run_until(lambda: len(t.records()) >= 4, "the good posts")
    assert t.texts() == ["a 0", "a 1", "b 0", "b 1"]
    messages = t.events.error_messages()
    assert len(messages) == 3
    assert "skipped a malformed line" in messages[0] and "cut sh" in messages[0]
    assert "not a JSON object" in messages[1]
    assert "neither data nor errors" in messages[2]
    assert len(t.events.started) == 1, "the stream was not restarted"


def test_an_error_sent_in_the_stream_ends_the_connection(x_server, stream_test):
    t = stream_test()
    t.collect(_source(x_server, networkBackoffStep=0.05).createStream(t.ssc))
    t.ssc.start()
    x_server.send(_posts("before", 1))
    t.run_until(lambda: len(t.records()) == 1, "the first post")
    x_server.send_error("operational-disconnect", "This stream has been disconnected")
    x_server.send(_posts("after", 1))
    t.run_until(lambda: len(t.records()) == 2, "the post after the reconnection")
    assert any("sent an error: operational-disconnect: This stream has been disconnected" in m
               for m in t.events.error_messages())


# --------------------------------------------------------------------------- reconnecting


def test_network_errors_back_off_linearly(stream_test):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens
    t = stream_test()
    t.collect(TwitterSource(bearerToken=TOKEN, baseUrl=url, networkBackoffStep=0.01,
                            networkBackoffMax=0.025).createStream(t.ssc))
    t.ssc.start()
    t.events.wait(lambda: len(t.events.errors) >= 4, "four failures")
    messages = t.events.error_messages()
    assert _delays(messages)[:4] == ["0.01 s", "0.02 s", "0.025 s", "0.025 s"]
    assert "ConnectError" in messages[0]


def test_http_errors_back_off_exponentially_and_the_count_resets_once_connected(
        x_server, stream_test):
    x_server.respond(503, times=3)
    t = stream_test()
    t.collect(_source(x_server, httpBackoffStart=0.02, networkBackoffStep=0.01)
              .createStream(t.ssc))
    t.ssc.start()
    x_server.send(_posts("up", 1))
    t.run_until(lambda: len(t.records()) == 1, "the stream after three 503s")
    messages = t.events.error_messages()
    assert _delays(messages) == ["0.02 s", "0.04 s", "0.08 s"]
    assert "answered HTTP 503 Service Unavailable" in messages[0]
    x_server.respond(503)
    x_server.fail()  # connected once: the next HTTP error starts again from the first wait
    t.events.wait(lambda: len(t.events.errors) >= 5, "the next failures")
    assert _delays(t.events.error_messages())[3:5] == ["0.01 s", "0.02 s"]


def test_a_429_waits_until_the_rate_limit_resets(x_server, stream_test):
    reset_mono, reset_at = time.monotonic() + 1.0, time.time() + 1.0
    x_server.respond(429, {"x-rate-limit-reset": f"{reset_at:.3f}",
                           "x-rate-limit-remaining": "0"})
    t = stream_test()
    t.collect(_source(x_server).createStream(t.ssc))
    t.ssc.start()
    x_server.send(_posts("later", 1))
    t.run_until(lambda: len(t.records()) == 1, "the stream after the reset")
    (message,) = t.events.error_messages()
    assert "HTTP 429 Too Many Requests" in message and "the rate limit resets at" in message
    assert x_server.connections == 1
    stream_requests = [r for r in x_server.requests if r[1] == "/2/tweets/sample/stream"]
    assert len(stream_requests) == 2, "no request in between"
    restarted_at = t.events.started_at[1]
    assert restarted_at >= reset_mono - 0.05, "reconnected before the rate limit reset"


def test_a_429_without_a_reset_time_backs_off_exponentially(x_server, stream_test):
    x_server.respond(429, times=2)
    t = stream_test()
    t.collect(_source(x_server, rateLimitBackoffStart=0.02).createStream(t.ssc))
    t.ssc.start()
    x_server.send(_posts("later", 1))
    t.run_until(lambda: len(t.records()) == 1, "the stream after two 429s")
    assert _delays(t.events.error_messages()) == ["0.02 s", "0.04 s"]


def test_a_wrong_token_is_reported_as_an_http_error(x_server, stream_test):
    t = stream_test()
    t.collect(_source(x_server, bearerToken="wrong", httpBackoffStart=0.02).createStream(t.ssc))
    t.ssc.start()
    t.events.wait(lambda: len(t.events.errors) >= 2, "two refusals")
    assert "HTTP 401 Unauthorized (Unauthorized: Unauthorized)" in t.events.error_messages()[0]
    assert _delays(t.events.error_messages())[:2] == ["0.02 s", "0.04 s"]


def test_stop_is_prompt_while_a_read_waits_on_a_quiet_stream(x_server, stream_test):
    t = stream_test()
    t.collect(_source(x_server).createStream(t.ssc))  # stallTimeout: the platform's 20 s
    t.ssc.start()
    x_server.wait_connections(1)
    x_server.stall()  # the receiver waits in a read of a silent stream
    started = time.monotonic()
    t.ssc.stop(stopSparkContext=True)
    assert time.monotonic() - started < 3


# --------------------------------------------------------------------------- rules


def test_the_filtered_stream_adds_missing_rules_and_gets_matching_posts(x_server,
                                                                        stream_test):
    (kept,) = TwitterUtils.addRules([{"value": "#python", "tag": "py"}], bearerToken=TOKEN,
                                    baseUrl=x_server.url)
    t = stream_test()
    t.collect(TwitterUtils.createStream(t.ssc, ["#python", "ember lang:en"], bearerToken=TOKEN,
                                        baseUrl=x_server.url))
    t.ssc.start()
    x_server.wait_connections(1)
    rules = TwitterUtils.listRules(bearerToken=TOKEN, baseUrl=x_server.url)
    assert sorted(r["value"] for r in rules) == ["#python", "ember lang:en"], "no duplicate"
    x_server.send([{"id": "1", "text": "I like #python"}, {"id": "2", "text": "nothing here"},
                   {"id": "3", "text": "Ember streams"}])
    t.run_until(lambda: len(t.records()) >= 2, "the matching posts")
    one, three = t.records()
    assert (one["id"], three["id"]) == ("1", "3")
    assert one["matching_rules"] == [{"id": kept["id"], "tag": "py"}]
    rules_path, stream_path = "/2/tweets/search/stream/rules", "/2/tweets/search/stream"
    assert [(r[0], r[1]) for r in x_server.requests] == [
        ("POST", rules_path),  # the test's rule
        ("GET", rules_path), ("POST", rules_path), ("GET", stream_path),  # the receiver
        ("GET", rules_path),  # the test's listing
    ]
    added = [r for r in x_server.requests if r[0] == "POST"]
    assert len(added) == 2
    assert t.events.error_messages() == []


def test_rule_management_adds_lists_checks_and_deletes(x_server):
    api = {"bearerToken": TOKEN, "baseUrl": x_server.url}
    assert TwitterUtils.listRules(**api) == []
    checked = TwitterUtils.addRules(["cats has:images"], dryRun=True, **api)
    assert [r["value"] for r in checked] == ["cats has:images"]
    assert TwitterUtils.listRules(**api) == [], "a dry run adds nothing"
    added = TwitterUtils.addRules(["cats has:images", {"value": "dogs", "tag": "d"}], **api)
    assert [(r["value"], r.get("tag")) for r in added] == [("cats has:images", None),
                                                          ("dogs", "d")]
    assert sorted(r["id"] for r in TwitterUtils.listRules(**api)) == sorted(
        r["id"] for r in added)
    with pytest.raises(XApiError, match="'dogs': DuplicateRule"):
        TwitterUtils.addRules(["dogs"], **api)
    assert TwitterUtils.deleteRules([added[0]["id"], "999"], **api) == 1
    assert [r["value"] for r in TwitterUtils.listRules(**api)] == ["dogs"]
    with pytest.raises(XApiError, match="HTTP 401") as refused:
        TwitterUtils.listRules(bearerToken="wrong", baseUrl=x_server.url)
    assert refused.value.status == 401


def test_a_refused_rule_is_reported_by_the_receiver(x_server, stream_test):
    t = stream_test()
    t.collect(_source(x_server, filters=["x" * 600], httpBackoffStart=0.02).createStream(t.ssc))
    t.ssc.start()
    t.events.wait(lambda: t.events.errors, "the refusal")
    message = t.events.error_messages()[0]
    assert "could not set the filtered stream's rules" in message
    assert "UnprocessableEntity" in message
