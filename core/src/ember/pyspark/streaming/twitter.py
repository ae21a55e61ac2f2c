"""``TwitterUtils``, as in Spark's ``org.apache.spark.streaming.twitter``: it comes from the ``ember-twitter`` plugin.

Like Spark's advanced sources (separate artifacts to link), ember's are separate
distributions: ``pip install ember-twitter``. Without it, importing this module says so.
"""

from ember.pyspark.streaming._advanced import require_plugin

TwitterUtils = require_plugin("ember_twitter", "ember-twitter", "TwitterUtils").TwitterUtils

__all__ = ["TwitterUtils"]
