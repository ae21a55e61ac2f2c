"""The ``cloudpickle`` serializer for ember: pickles closures, lambdas and local classes.

Select it with ``ember.serializer=cloudpickle`` when records hold functions or instances of
classes defined inside functions or in ``__main__``. It writes ordinary pickle data (read back
with :func:`pickle.loads`), but pickles such objects *by value*, so the reading process needs
the same Python and cloudpickle versions: use it for data in flight (blocks, shuffles), not
for archives kept across upgrades.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

import cloudpickle
from ember.errors import SerializationError
from ember.serializers import Serializer, unserializable_error

__all__ = ["CloudpickleSerializer"]

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_ADVICE = (
    "make the object picklable (give it __getstate__/__reduce__, or keep only plain data in "
    "records)"
)


def _dumps(obj: Any) -> bytes:
    return cloudpickle.dumps(obj, protocol=_PROTOCOL)


class CloudpickleSerializer(Serializer):
    """Serialize with cloudpickle, which also handles lambdas and locally defined classes.

    Slower than the ``pickle`` serializer for plain data (cloudpickle's pickler checks every
    object for by-value pickling), so prefer ``pickle`` unless records hold functions or local
    classes. A batch is pickled as one list and read back without a copy.
    """

    name = "cloudpickle"
    format_version = 1
    api_version = "1.0"

    def dumps(self, obj: Any) -> bytes:
        """Serialize one object.

        :raises ember.errors.SerializationError: the object (or a part of it) cannot be
            pickled even by value; the message names its type and where it is.
        """
        try:
            return cloudpickle.dumps(obj, protocol=_PROTOCOL)
        except Exception as exc:
            raise unserializable_error(
                obj, exc, serializer=self.name, dumps=_dumps, advice=_ADVICE
            ) from exc

    def loads(self, data: bytes) -> Any:
        """Deserialize one object written by :meth:`dumps`."""
        return pickle.loads(data)

    def dumps_batch(self, records: Iterable[Any]) -> bytes:
        """Serialize a batch of records (any iterable) as one pickled list.

        :raises ember.errors.SerializationError: a record cannot be pickled; the message says
            which record, which part of it, and its type.
        """
        batch = records if type(records) is list else list(records)
        try:
            return cloudpickle.dumps(batch, protocol=_PROTOCOL)
        except Exception as exc:
            raise unserializable_error(
                batch, exc, serializer=self.name, dumps=_dumps, advice=_ADVICE, root="batch"
            ) from exc

    def loads_batch(self, data: bytes) -> list[Any]:
        """Deserialize a batch written by :meth:`dumps_batch`, in order, as a list."""
        batch = pickle.loads(data)
        if type(batch) is not list:
            raise SerializationError(
                f"the cloudpickle serializer expected a batch (a pickled list) but the data "
                f"holds a {type(batch).__name__}; it was written by dumps(), not dumps_batch()."
            )
        return batch
