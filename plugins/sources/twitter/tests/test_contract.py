"""ember-twitter passes ember's receiver contract against a local server speaking the X API
v2 streaming protocol (the sampled stream; ``fail()`` ends the connection)."""

import pytest
from ember.testing.contracts import ReceiverContract
from ember_twitter import TwitterSource


class TestTwitterSourceContract(ReceiverContract):
    @pytest.fixture
    def feed(self, x_feed):
        return x_feed  # send(posts) streams {"data": post} lines; fail() ends the stream

    @pytest.fixture
    def source_factory(self, feed):
        return lambda: TwitterSource(bearerToken="test-token", baseUrl=feed.server.url,
                                     stallTimeout=2.0)

    @pytest.fixture
    def expected_records(self):
        def make(n, start=0):
            return [{"id": str(i), "text": f"record-{i}"} for i in range(start, start + n)]

        return make
