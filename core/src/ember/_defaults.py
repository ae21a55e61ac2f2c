"""ember-core's own configuration defaults, registered as a built-in hook plugin.

The engine reads them through its configuration object (``ember.plugins.merged_config_defaults``);
a user setting replaces a default, and no plugin may give one of these keys a different default.
"""

from __future__ import annotations

from typing import Any

from ember.plugins import hookimpl

#: Every configuration key ember-core itself defines, with its default value.
CORE_DEFAULTS: dict[str, Any] = {
    # How many times one task may fail before its job is failed (Spark: spark.task.maxFailures).
    "ember.task.maxFailures": 4,
    # The serializer plugin (entry-point name in ``ember.serializers``) used for data.
    "ember.serializer": "pickle",
    # Directory for shuffle files and spilled blocks; "" means a fresh temporary directory.
    "ember.local.dir": "",
}


@hookimpl
def ember_config_defaults() -> dict[str, Any]:
    """Return ember-core's defaults (a copy, so callers may change it)."""
    return dict(CORE_DEFAULTS)
