"""Contract test suites that ember plugins subclass to prove they conform.

A plugin's ``tests/test_contract.py`` is a few lines::

    import pytest
    from ember.testing.contracts import SerializerContract
    from ember_mine import MySerializer

    class TestMySerializer(SerializerContract):
        @pytest.fixture
        def serializer(self):
            return MySerializer()

Every suite derives from :class:`ContractTests`, whose guard test fails when a subclass
overrides or removes one of the contract's tests without marking it
``@pytest.mark.xfail(reason=...)``.

Needs pytest (``pip install ember-core[testing]``).
"""

import pytest

# Before importing the suites, so their plain asserts get pytest's detailed failure messages.
pytest.register_assert_rewrite("ember.testing.contracts")

from ember.testing.contracts.base import ContractTests  # noqa: E402
from ember.testing.contracts.serializer import SerializerContract  # noqa: E402
from ember.testing.contracts.sink import SinkContract  # noqa: E402
from ember.testing.contracts.source import ReceiverContract, SourceContract  # noqa: E402

__all__ = [
    "ContractTests",
    "ReceiverContract",
    "SerializerContract",
    "SinkContract",
    "SourceContract",
]
