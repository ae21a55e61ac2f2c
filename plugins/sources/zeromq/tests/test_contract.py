"""ember-zeromq passes ember's receiver contract against a real ZeroMQ publisher (an XPUB
socket on 127.0.0.1; ``fail()`` closes it and binds a new one on the same port)."""

import pytest
from ember.testing.contracts import ReceiverContract
from ember_zeromq import ZeroMQSource, last_frame_as_text


class TestZeroMQSourceContract(ReceiverContract):
    @pytest.fixture
    def feed(self, zeromq_feed):
        return zeromq_feed  # send(records): [b"records", record] messages; fail(): rebind

    @pytest.fixture
    def source_factory(self, feed):
        return lambda: ZeroMQSource(feed.url, b"records", last_frame_as_text)
