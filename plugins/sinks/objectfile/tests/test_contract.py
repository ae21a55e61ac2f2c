"""ember-objectfile passes ember's sink contract (on the inline and local[2] executors)."""

import os

import pytest
from ember.testing.contracts import SinkContract
from ember_objectfile import ObjectFileSink


class TestObjectFileSinkContract(SinkContract):
    @pytest.fixture
    def sink_factory(self):
        return ObjectFileSink

    @pytest.fixture
    def read_batch(self, sink_context):
        return lambda path: sink_context.pickleFile(path).collect() if os.path.exists(path) else None
