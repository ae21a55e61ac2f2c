"""The ``cloudpickle`` serializer for ember: pickles closures, lambdas and local classes.

Select it with ``ember.serializer=cloudpickle`` when records hold functions or instances of
classes defined inside functions or in ``__main__``. It writes ordinary pickle data (read back
with :func:`pickle.loads`), but pickles such objects *by value*, so the reading process needs
the same Python and cloudpickle versions: use it for data in flight (blocks, shuffles), not
for archives kept across upgrades.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle
from ember.serializers import PickleFormatSerializer

__all__ = ["CloudpickleSerializer"]


class CloudpickleSerializer(PickleFormatSerializer):
    """Serialize with cloudpickle, which also handles lambdas and locally defined classes.

    Slower than the ``pickle`` serializer for plain data (cloudpickle's pickler checks every
    object for by-value pickling), so prefer ``pickle`` unless records hold functions or local
    classes. A batch is pickled as one list and read back without a copy.
    """

    name = "cloudpickle"
    format_version = 1
    api_version = "1.0"
    advice = (
        "make the object picklable (give it __getstate__/__reduce__, or keep only plain data "
        "in records)"
    )

    def to_pickle(self, obj: Any) -> bytes:
        """``obj`` pickled with :func:`cloudpickle.dumps` at the highest protocol."""
        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
