"""``SparkConf``: PySpark's name for :class:`ember.Conf` (``spark.*`` keys are accepted)."""

from ember.conf import Conf as SparkConf

__all__ = ["SparkConf"]
