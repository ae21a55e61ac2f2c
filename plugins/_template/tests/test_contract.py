"""ember-replace_me passes ember's receiver contract (on the inline and local[2] executors)."""

import pytest
from ember.testing.contracts import ReceiverContract
from ember_replace_me import ReplaceMeSource


class TestReplaceMeSourceContract(ReceiverContract):
    @pytest.fixture
    def feed(self, line_server):
        return line_server  # send(records), fail(): REPLACE_ME with your system's feed

    @pytest.fixture
    def source_factory(self, feed):
        return lambda: ReplaceMeSource("127.0.0.1", feed.port)

    # REPLACE_ME: capability fixtures when the defaults do not describe your source, e.g.
    # @pytest.fixture
    # def delivery(self):
    #     return Delivery.AT_LEAST_ONCE
