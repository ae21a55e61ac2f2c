"""ember-cloudpickle passes ember's serializer contract."""

import pytest
from ember.testing.contracts import SerializerContract
from ember_cloudpickle import CloudpickleSerializer


class TestCloudpickleSerializerContract(SerializerContract):
    @pytest.fixture
    def serializer(self):
        return CloudpickleSerializer()

    @pytest.fixture
    def supports_functions(self):
        return True
