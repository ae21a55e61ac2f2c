"""``StorageLevel``: PySpark's storage levels (:class:`ember.StorageLevel`)."""

from ember.storagelevel import StorageLevel

__all__ = ["StorageLevel"]
