"""ember-text passes ember's sink contract (on the inline and local[2] executors)."""

import os

import pytest
from ember.testing.contracts import SinkContract
from ember_text import TextSink


class TestTextSinkContract(SinkContract):
    @pytest.fixture
    def sink_factory(self):
        return TextSink

    @pytest.fixture
    def read_batch(self, sink_context):
        return lambda path: sink_context.textFile(path).collect() if os.path.exists(path) else None

    @pytest.fixture
    def round_trips_records(self):
        return False  # a text sink writes str(record), a line each
