"""``ZeroMQUtils``, as in Spark's ``org.apache.spark.streaming.zeromq``: it comes from the ``ember-zeromq`` plugin.

Like Spark's advanced sources (separate artifacts to link), ember's are separate
distributions: ``pip install ember-zeromq``. Without it, importing this module says so.
"""

from ember.pyspark.streaming._advanced import require_plugin

ZeroMQUtils = require_plugin("ember_zeromq", "ember-zeromq", "ZeroMQUtils").ZeroMQUtils

__all__ = ["ZeroMQUtils"]
