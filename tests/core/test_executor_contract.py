"""ember-core's own executors pass the executor contract."""

import pytest
from ember.testing.contracts.executor import ExecutorContract


class TestInlineExecutorContract(ExecutorContract):
    @pytest.fixture
    def master(self):
        return "inline"


class TestLocalExecutorContract(ExecutorContract):
    @pytest.fixture
    def master(self):
        return "local[2]"

    @pytest.fixture
    def supports_worker_kill(self):
        return True
