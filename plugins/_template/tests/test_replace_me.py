"""ember-replace_me's own behaviour (REPLACE_ME: test against real parts — reconnection,
failures reported to listeners, options refused with clear messages...)."""

import pytest
from ember.plugins import load_component
from ember_replace_me import ReplaceMeSource


def test_the_entry_point_is_the_source():
    assert load_component("sources", "replace_me") is ReplaceMeSource


@pytest.mark.parametrize(("options", "words"), [
    ({"host": "h", "port": 0}, "port"),
    ({"host": "h", "port": 1, "restartDelay": -1}, "restartDelay"),
])
def test_bad_options_are_refused_when_the_stream_is_made(options, words):
    with pytest.raises(ValueError, match=words):
        ReplaceMeSource(**options)


def test_the_backoff_doubles_up_to_its_limit():
    source = ReplaceMeSource("h", 1, restartDelay=0.5, maxRestartDelay=3)
    assert [source.restart_delay(n, 2.0) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 3]
