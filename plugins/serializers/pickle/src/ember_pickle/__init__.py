"""The ``pickle`` serializer for ember: the standard library's pickle, highest protocol.

It is ember's default serializer for data (``ember.serializer=pickle``): blocks, shuffles,
cached partitions, checkpoints, the write-ahead log and object files. It handles every value
:mod:`pickle` handles; functions, lambdas and locally defined classes need the ``cloudpickle``
serializer.
"""

from __future__ import annotations

import pickle
from typing import Any

from ember.serializers import PickleFormatSerializer

__all__ = ["PickleSerializer"]


class PickleSerializer(PickleFormatSerializer):
    """Serialize with :mod:`pickle` at the highest protocol (ember's default for data).

    A batch is pickled as one list, which is the fastest form :mod:`pickle` offers: a single
    C-level pass, with objects shared between records written once. ``loads_batch`` returns
    that list without copying it. A truncated or damaged payload raises instead of returning
    part of a batch.
    """

    name = "pickle"
    format_version = 1
    api_version = "1.0"
    advice = (
        "use the cloudpickle serializer (ember.serializer=cloudpickle), which also handles "
        "functions, lambdas and locally defined classes, or make the object picklable (define "
        "it at module level, or give it __getstate__/__reduce__)"
    )

    def to_pickle(self, obj: Any) -> bytes:
        """``obj`` pickled with :func:`pickle.dumps` at the highest protocol."""
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
