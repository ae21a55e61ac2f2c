"""``MQTTUtils``, as in PySpark 1.x's ``pyspark.streaming.mqtt``: it comes from the ``ember-mqtt`` plugin.

Like Spark's advanced sources (separate artifacts to link), ember's are separate
distributions: ``pip install ember-mqtt``. Without it, importing this module says so.
"""

from ember.pyspark.streaming._advanced import require_plugin

MQTTUtils = require_plugin("ember_mqtt", "ember-mqtt", "MQTTUtils").MQTTUtils

__all__ = ["MQTTUtils"]
