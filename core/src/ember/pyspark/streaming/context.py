"""``StreamingContext`` with PySpark's constructor (:class:`ember.streaming.StreamingContext`)."""

from __future__ import annotations

from typing import Any

from ember._clock import Clock
from ember.conf import Conf
from ember.context import Context
from ember.streaming.context import StreamingContext as _StreamingContext

__all__ = ["StreamingContext"]


class StreamingContext(_StreamingContext):
    """PySpark's ``StreamingContext(sparkContext, batchDuration=None, jssc=None)``.

    It is :class:`ember.streaming.StreamingContext` (same methods, same lifecycle rules) with
    PySpark's positional form, ``StreamingContext(sc, 1)``; ``jssc`` is refused since ember
    has no JVM. ember's keyword arguments (``appName``, ``conf``, ``clock``) work too.

    :param sparkContext: the :class:`ember.pyspark.SparkContext` (any :class:`ember.Context`),
        or a master URL string.
    :param batchDuration: seconds between batches.
    :raises ValueError: when ``jssc`` is given.
    """

    def __init__(self, sparkContext: Context | str | None = None,
                 batchDuration: float | None = None, jssc: Any = None, *,
                 appName: str | None = None, conf: Conf | None = None,
                 clock: Clock | None = None) -> None:
        if jssc is not None:
            raise ValueError("StreamingContext: ember has no JVM, so `jssc` cannot be used")
        super().__init__(sparkContext, batchDuration, appName=appName, conf=conf, clock=clock)
