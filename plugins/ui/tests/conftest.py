"""Fixtures of ember-ui's tests: real streams on a manual clock, with the UI on a free port."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import ember_ui
import pytest
from ember import Conf, Context
from ember.streaming import StreamingContext
from ember.testing import ManualClock

#: The manual clock's start (s): batch times are 1_700_000_001_000, 1_700_000_002_000, ...
START = 1_700_000_000.0


class Stream:
    """A context and a streaming context on a manual clock, with the UI on a free port."""

    __test__ = False

    def __init__(self, master: str, conf: dict[str, Any] | None = None,
                 interval: float = 1.0) -> None:
        c = Conf().set("ember.ui.port", 0)
        for key, value in (conf or {}).items():
            c.set(key, value)
        self.sc = Context(master, "ui-test", c)
        self.clock = ManualClock(START)
        self.ssc = StreamingContext(self.sc, interval, clock=self.clock)
        #: The first batch time (ms).
        self.t1 = round(START * 1000 + interval * 1000)

    @property
    def ui(self) -> ember_ui.StreamingUI:
        ui = ember_ui.current_ui()
        assert ui is not None and ui.server is not None, "the UI is not running"
        return ui

    @property
    def base(self) -> str:
        return self.ui.server.url  # type: ignore[union-attr]

    @property
    def api(self) -> str:
        return f"{self.base}/api/v1/applications/{self.ui.settings.app_id}/streaming"

    def stop(self) -> None:
        self.ssc.stop(stopSparkContext=False)
        self.sc.stop()


class Http:
    """A real HTTP client (urllib) for the tests, and a bounded wait for other threads."""

    __test__ = False

    @staticmethod
    def get(url: str, timeout: float = 10.0) -> tuple[int, str, str]:
        """``(status, content type, body)`` of a GET, whatever the status."""
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read().decode()

    def json(self, url: str) -> Any:
        """The JSON document at ``url`` (status 200 required)."""
        status, ctype, body = self.get(url)
        assert status == 200, f"GET {url} -> {status}: {body}"
        assert ctype.startswith("application/json"), ctype
        return json.loads(body)

    @staticmethod
    def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
        """Poll ``predicate`` (another thread's progress) until truthy; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.01)


@pytest.fixture
def http() -> Http:
    """The HTTP helper (:class:`Http`)."""
    return Http()


@pytest.fixture
def make_stream() -> Iterator[Callable[..., Stream]]:
    """Build :class:`Stream` objects; every one is stopped after the test."""
    made: list[Stream] = []

    def make(master: str = "inline", conf: dict[str, Any] | None = None,
             interval: float = 1.0) -> Stream:
        s = Stream(master, conf, interval)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
