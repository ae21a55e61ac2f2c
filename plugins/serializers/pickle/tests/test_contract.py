"""ember-pickle passes ember's serializer contract."""

import pytest
from ember.testing.contracts import SerializerContract
from ember_pickle import PickleSerializer


class TestPickleSerializerContract(SerializerContract):
    @pytest.fixture
    def serializer(self):
        return PickleSerializer()
