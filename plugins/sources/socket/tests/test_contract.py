"""ember-socket passes ember's receiver contract (on the inline and local[2] executors)."""

import pytest
from ember.testing.contracts import ReceiverContract
from ember_socket import SocketSource


class TestSocketSourceContract(ReceiverContract):
    @pytest.fixture
    def feed(self, servers):
        return servers()  # LineServer: send(records) writes lines, fail() closes the client

    @pytest.fixture
    def source_factory(self, feed):
        return lambda: SocketSource("127.0.0.1", feed.port)
