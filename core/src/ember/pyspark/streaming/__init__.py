"""PySpark's ``pyspark.streaming`` names over ember's streaming.

``from ember.pyspark.streaming import StreamingContext`` replaces
``from pyspark.streaming import StreamingContext``.
"""

from __future__ import annotations

from ember.pyspark.streaming.context import StreamingContext
from ember.pyspark.streaming.dstream import DStream
from ember.pyspark.streaming.listener import StreamingListener

__all__ = ["DStream", "StreamingContext", "StreamingListener"]
