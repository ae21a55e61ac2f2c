"""PySpark's names over ember: change the import prefix ``pyspark`` to ``ember.pyspark``.

A PySpark DStream program such as::

    from pyspark import SparkContext
    from pyspark.streaming import StreamingContext

runs on ember as::

    from ember.pyspark import SparkContext
    from ember.pyspark.streaming import StreamingContext

The classes are ember's own (``SparkConf`` *is* :class:`ember.Conf`, ``RDD`` *is*
:class:`ember.RDD`); :class:`SparkContext` is :class:`ember.Context` with PySpark's
constructor and ``setLogLevel``. Importing this package loads no plugin and starts no thread.
"""

from __future__ import annotations

from ember.pyspark.accumulators import Accumulator, AccumulatorParam
from ember.pyspark.broadcast import Broadcast
from ember.pyspark.conf import SparkConf
from ember.pyspark.context import SparkContext
from ember.pyspark.rdd import RDD
from ember.pyspark.storagelevel import StorageLevel

__all__ = [
    "RDD",
    "Accumulator",
    "AccumulatorParam",
    "Broadcast",
    "SparkConf",
    "SparkContext",
    "StorageLevel",
]
