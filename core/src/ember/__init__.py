"""ember: the Spark Streaming programming model (DStreams) in pure Python.

``import ember`` loads no plugin and starts no thread; plugins load when first asked for.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ember-core")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

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
