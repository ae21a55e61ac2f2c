"""ember-pickle's own behaviour, beyond the serializer contract."""

import pickle
import threading

import pytest
from ember.errors import SerializationError
from ember.plugins import load_component
from ember.serializers import get_serializer
from ember_pickle import PickleSerializer


def test_it_is_registered_as_the_pickle_serializer():
    assert load_component("serializers", "pickle") is PickleSerializer
    assert isinstance(get_serializer("pickle"), PickleSerializer)


def test_a_lambda_is_refused_with_advice_to_use_cloudpickle():
    with pytest.raises(SerializationError) as info:
        PickleSerializer().dumps({"key": lambda x: x})
    message = str(info.value)
    assert "type 'function' at value['key']" in message
    assert "ember.serializer=cloudpickle" in message
    assert isinstance(info.value.__cause__, (pickle.PicklingError, AttributeError, TypeError))


def test_a_lock_deep_in_a_batch_is_named_with_its_place_and_no_cloudpickle_advice():
    with pytest.raises(SerializationError) as info:
        PickleSerializer().dumps_batch([1, {"a": [2, threading.Lock()]}])
    message = str(info.value)
    assert "'_thread.lock' at batch[1]['a'][1]" in message
    assert "cloudpickle" not in message
    assert "mapPartitions" in message


def test_an_attribute_of_an_object_is_named_in_the_error():
    with pytest.raises(SerializationError, match=r"at value\.handle"):
        PickleSerializer().dumps(Holder(threading.RLock()))


def test_a_single_object_is_not_mistaken_for_a_batch():
    data = PickleSerializer().dumps(("not", "a", "list"))
    with pytest.raises(SerializationError, match="written by dumps"):
        PickleSerializer().loads_batch(data)


def test_the_bytes_are_plain_pickle_readable_without_ember():
    ser = PickleSerializer()
    assert pickle.loads(ser.dumps_batch([(1, "a")])) == [(1, "a")]
    assert ser.loads_batch(pickle.dumps([(1, "a")])) == [(1, "a")]


class Holder:
    def __init__(self, handle):
        self.handle = handle
