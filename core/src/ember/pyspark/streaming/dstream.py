"""``DStream``: PySpark's discretized stream (:class:`ember.streaming.DStream`)."""

from ember.streaming.dstream import DStream

__all__ = ["DStream"]
