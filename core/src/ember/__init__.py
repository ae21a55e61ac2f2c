"""ember: the Spark Streaming programming model (DStreams) in pure Python.

``import ember`` loads no plugin and starts no thread. Its public names are imported on
first use (PEP 562), so a worker process, which needs only the task runner, does not pay for
the driver's machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ember.accumulators import Accumulator, AccumulatorParam
    from ember.broadcast import Broadcast
    from ember.conf import Conf
    from ember.context import Context
    from ember.plugins import hookimpl
    from ember.rdd import RDD
    from ember.storagelevel import StorageLevel

__all__ = [
    "RDD",
    "Accumulator",
    "AccumulatorParam",
    "Broadcast",
    "Conf",
    "Context",
    "StorageLevel",
    "__version__",
    "hookimpl",
]

_HOMES = {
    "RDD": "ember.rdd",
    "Accumulator": "ember.accumulators",
    "AccumulatorParam": "ember.accumulators",
    "Broadcast": "ember.broadcast",
    "Conf": "ember.conf",
    "Context": "ember.context",
    "StorageLevel": "ember.storagelevel",
    "hookimpl": "ember.plugins",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ember-core")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = globals()["__version__"] = _version()
        return value
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ember' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
