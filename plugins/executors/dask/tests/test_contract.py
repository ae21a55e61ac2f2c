"""ember-dask passes ember's executor contract on a local Dask cluster of two workers."""

import pytest
from ember.testing.contracts.executor import ExecutorContract


class TestDaskExecutorContract(ExecutorContract):
    @pytest.fixture
    def master(self):
        return "dask-local[2]"

    @pytest.fixture
    def supports_worker_kill(self):
        return True
