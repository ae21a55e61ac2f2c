"""ember-cloudpickle's own behaviour, beyond the serializer contract."""

import pickle
import threading

import pytest
from ember.errors import SerializationError
from ember.plugins import load_component
from ember.serializers import get_serializer
from ember_cloudpickle import CloudpickleSerializer


def test_it_is_registered_as_the_cloudpickle_serializer():
    assert load_component("serializers", "cloudpickle") is CloudpickleSerializer
    assert isinstance(get_serializer("cloudpickle"), CloudpickleSerializer)


def test_closures_and_local_classes_round_trip_by_value():
    base = 10

    class Point:
        def __init__(self, x):
            self.x = x

        def shifted(self):
            return self.x + base

    ser = CloudpickleSerializer()
    records = [Point(1), lambda v: v * base, {"p": Point(2)}]
    point, scale, holder = ser.loads_batch(ser.dumps_batch(records))
    assert point.shifted() == 11
    assert scale(3) == 30
    assert holder["p"].x == 2


def test_a_lock_is_refused_naming_it_without_suggesting_cloudpickle_itself():
    with pytest.raises(SerializationError) as info:
        CloudpickleSerializer().dumps_batch([("k", threading.Lock())])
    message = str(info.value)
    assert message.startswith("the cloudpickle serializer cannot serialize")
    assert "'_thread.lock' at batch[0][1]" in message
    assert "ember.serializer=cloudpickle" not in message


def test_an_object_whose_reduce_raises_is_refused_with_its_error_as_cause():
    class Refuses:
        def __reduce__(self):
            raise ValueError("not today")

    with pytest.raises(SerializationError, match="not today") as info:
        CloudpickleSerializer().dumps(Refuses())
    assert isinstance(info.value.__cause__, ValueError)


def test_the_bytes_are_plain_pickle_readable_without_ember():
    assert pickle.loads(CloudpickleSerializer().dumps_batch([1, "a"])) == [1, "a"]
