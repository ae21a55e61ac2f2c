"""The ``pickle`` serializer for ember: the standard library's pickle, highest protocol.

It is ember's default serializer for data (``ember.serializer=pickle``): blocks, shuffles,
cached partitions, checkpoints, the write-ahead log and object files. It handles every value
:mod:`pickle` handles; functions, lambdas and locally defined classes need the ``cloudpickle``
serializer.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

from ember.errors import SerializationError
from ember.serializers import Serializer, unserializable_error

__all__ = ["PickleSerializer"]

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_ADVICE = (
    "use the cloudpickle serializer (ember.serializer=cloudpickle), which also handles "
    "functions, lambdas and locally defined classes, or make the object picklable (define it "
    "at module level, or give it __getstate__/__reduce__)"
)


def _dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=_PROTOCOL)


class PickleSerializer(Serializer):
    """Serialize with :mod:`pickle` at the highest protocol (ember's default for data).

    A batch is pickled as one list, which is the fastest form :mod:`pickle` offers: a single
    C-level pass, with objects shared between records written once. ``loads_batch`` returns
    that list without copying it. A truncated or damaged payload raises instead of returning
    part of a batch.
    """

    name = "pickle"
    format_version = 1
    api_version = "1.0"

    def dumps(self, obj: Any) -> bytes:
        """Serialize one object.

        :raises ember.errors.SerializationError: the object (or a part of it) is not
            picklable; the message names its type and where it is.
        """
        try:
            return pickle.dumps(obj, protocol=_PROTOCOL)
        except Exception as exc:
            raise unserializable_error(
                obj, exc, serializer=self.name, dumps=_dumps, advice=_ADVICE
            ) from exc

    def loads(self, data: bytes) -> Any:
        """Deserialize one object written by :meth:`dumps`."""
        return pickle.loads(data)

    def dumps_batch(self, records: Iterable[Any]) -> bytes:
        """Serialize a batch of records (any iterable) as one pickled list.

        :raises ember.errors.SerializationError: a record is not picklable; the message says
            which record, which part of it, and its type.
        """
        batch = records if type(records) is list else list(records)
        try:
            return pickle.dumps(batch, protocol=_PROTOCOL)
        except Exception as exc:
            raise unserializable_error(
                batch, exc, serializer=self.name, dumps=_dumps, advice=_ADVICE, root="batch"
            ) from exc

    def loads_batch(self, data: bytes) -> list[Any]:
        """Deserialize a batch written by :meth:`dumps_batch`, in order, as a list."""
        batch = pickle.loads(data)
        if type(batch) is not list:
            raise SerializationError(
                f"the pickle serializer expected a batch (a pickled list) but the data holds a "
                f"{type(batch).__name__}; it was written by dumps(), not dumps_batch()."
            )
        return batch
