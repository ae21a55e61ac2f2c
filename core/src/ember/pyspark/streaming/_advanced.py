"""Import an advanced source's plugin for the ``ember.pyspark.streaming.<name>`` modules, or
say what to install (advanced sources are separate distributions, as Spark's are separate
artifacts)."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require_plugin"]


def require_plugin(module: str, distribution: str, what: str) -> ModuleType:
    """Import ``module`` from the plugin ``distribution``.

    :param what: the name the user asked for (``MQTTUtils``), for the message.
    :raises ModuleNotFoundError: the plugin is not installed; the message says
        ``pip install <distribution>``.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise  # the plugin is there, but something it needs is not: its own error
        raise ModuleNotFoundError(
            f"{what} comes with the {distribution} plugin, which is not installed. Advanced "
            f"sources are installed only when needed: pip install {distribution}",
            name=module,
        ) from None
