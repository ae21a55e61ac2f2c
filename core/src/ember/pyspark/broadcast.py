"""``Broadcast``: PySpark's broadcast variables (:class:`ember.Broadcast`)."""

from ember.broadcast import Broadcast

__all__ = ["Broadcast"]
