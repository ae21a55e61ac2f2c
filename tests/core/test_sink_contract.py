"""The built-in ``foreach`` sink (behind ``foreachRDD`` and ``pprint``) passes the sink contract.

A foreach sink writes by calling the user's function with ``(time, rdd)``. The function here
stores the batch's records under the batch's location, ``batch_path(prefix, t, suffix)``,
computed from the ``time`` it is given, so the contract also checks that the function gets
the batch time. The sink delivers at least once (re-running a batch calls the function again)
and writes no files itself.
"""

from __future__ import annotations

import pytest
from ember.plugins import load_component
from ember.sinks import Delivery, batch_path
from ember.testing.contracts import SinkContract


class TestForeachSinkContract(SinkContract):
    @pytest.fixture
    def written(self):
        return {}

    @pytest.fixture
    def sink_factory(self, written):
        foreach = load_component("sinks", "foreach")

        def make(prefix, suffix=None):
            def save(time, rdd):
                written[batch_path(prefix, round(time.timestamp() * 1000), suffix)] = rdd.collect()

            return foreach(save)

        return make

    @pytest.fixture
    def read_batch(self, written):
        return written.get

    @pytest.fixture
    def delivery(self):
        return Delivery.AT_LEAST_ONCE

    @pytest.fixture
    def writes_files(self):
        return False
