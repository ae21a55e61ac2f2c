"""``RDD``: PySpark's resilient distributed dataset (:class:`ember.RDD`)."""

from ember.rdd import RDD

__all__ = ["RDD"]
