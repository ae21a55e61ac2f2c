"""Configuration: ``Conf`` (PySpark's ``SparkConf``), with typed getters and plugin defaults.

Keys are strings such as ``ember.task.maxFailures``; every ``spark.*`` key is accepted as an
alias of the ``ember.*`` key with the same rest (``spark.streaming.blockInterval`` is
``ember.streaming.blockInterval``). Defaults come from the ``ember_config_defaults`` hook, so
plugins declare their own keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["Conf", "normalize_key", "parse_duration"]

_MISSING = object()
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|sec|secs|m|min|mins|h|hour|hours|d|days?)?\s*$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0, "m": 60.0, "min": 60.0,
          "mins": 60.0, "h": 3600.0, "hour": 3600.0, "hours": 3600.0, "d": 86400.0,
          "day": 86400.0, "days": 86400.0}


def normalize_key(key: str) -> str:
    """Return the canonical ``ember.*`` form of a configuration key (``spark.x`` → ``ember.x``)."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"configuration keys are non-empty strings, got {key!r}")
    if key.startswith("spark."):
        return "ember." + key[len("spark."):]
    return key


def parse_duration(value: Any, key: str = "duration") -> float:
    """Parse a duration into seconds: a number (seconds) or a string like ``"200ms"``, ``"10s"``.

    :raises ValueError: naming the key and the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a duration, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(
            f"{key} must be a duration such as 0.5, '200ms', '10s', '2min' or '1h'; got {value!r}"
        )
    return float(m.group(1)) * _UNITS[m.group(2)]


class Conf:
    """A set of configuration values for a :class:`~ember.Context` (PySpark's ``SparkConf``).

    >>> conf = Conf().setMaster("local[2]").setAppName("demo").set("spark.task.maxFailures", 2)
    >>> conf.get("ember.task.maxFailures")
    '2'
    >>> conf.getInt("spark.task.maxFailures")
    2

    :param loadDefaults: kept for PySpark compatibility; defaults always come from the hooks.
    :param pairs: initial ``(key, value)`` pairs.
    """

    def __init__(self, loadDefaults: bool = True, pairs: Iterable[tuple[str, Any]] = ()) -> None:
        self._values: dict[str, Any] = {}
        self._defaults: dict[str, Any] | None = None
        for k, v in pairs:
            self.set(k, v)

    # -- setting ------------------------------------------------------------------------
    def set(self, key: str, value: Any) -> Conf:
        """Set ``key`` to ``value`` (``spark.*`` keys are stored under ``ember.*``)."""
        self._values[normalize_key(key)] = value
        return self

    def setIfMissing(self, key: str, value: Any) -> Conf:
        """Set ``key`` only when it has no value yet."""
        key = normalize_key(key)
        if key not in self._values:
            self._values[key] = value
        return self

    def setAll(self, pairs: Iterable[tuple[str, Any]]) -> Conf:
        """Set several ``(key, value)`` pairs."""
        for k, v in pairs:
            self.set(k, v)
        return self

    def setMaster(self, value: str) -> Conf:
        """Set the master: ``local[N]``, ``local[*]``, ``inline`` or a plugin URL."""
        return self.set("ember.master", value)

    def setAppName(self, value: str) -> Conf:
        """Set the application name."""
        return self.set("ember.app.name", value)

    def setExecutorEnv(self, key: str | None = None, value: str | None = None,
                       pairs: Iterable[tuple[str, str]] | None = None) -> Conf:
        """Set environment variables of the worker processes."""
        items = list(pairs or []) + ([(key, value)] if key is not None else [])
        for k, v in items:
            self.set(f"ember.executorEnv.{k}", v)
        return self

    def unset(self, key: str) -> Conf:
        """Remove the value set for ``key`` (its default applies again)."""
        self._values.pop(normalize_key(key), None)
        return self

    # -- reading ------------------------------------------------------------------------
    def _defaults_map(self) -> dict[str, Any]:
        if self._defaults is None:
            from ember.plugins import get_plugin_manager, merged_config_defaults

            self._defaults = merged_config_defaults(get_plugin_manager())
        return self._defaults

    def _lookup(self, key: str, default: Any) -> Any:
        key = normalize_key(key)
        if key in self._values:
            return self._values[key]
        if default is not _MISSING:
            return default
        return self._defaults_map().get(key)

    def contains(self, key: str) -> bool:
        """Whether a value was set for ``key`` (defaults do not count)."""
        return normalize_key(key) in self._values

    def get(self, key: str, defaultValue: Any = _MISSING) -> str | None:
        """The value of ``key`` as a string (PySpark's behaviour), the default, or ``None``."""
        value = self._lookup(key, defaultValue)
        if value is None or value is defaultValue:
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def getInt(self, key: str, defaultValue: Any = _MISSING) -> int | None:
        """The value of ``key`` as an ``int``; a value that is not a whole number is an error."""
        value = self._lookup(key, defaultValue)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        try:
            f = float(value)
            if f != int(f):
                raise ValueError
            return int(f)
        except (TypeError, ValueError):
            raise ValueError(
                f"configuration {normalize_key(key)} must be a whole number, got {value!r}; "
                f"set it with conf.set({normalize_key(key)!r}, 4) for example"
            ) from None

    def getFloat(self, key: str, defaultValue: Any = _MISSING) -> float | None:
        """The value of ``key`` as a ``float``."""
        value = self._lookup(key, defaultValue)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"configuration {normalize_key(key)} must be a number, got {value!r}"
            ) from None

    def getBoolean(self, key: str, defaultValue: Any = _MISSING) -> bool | None:
        """The value of ``key`` as a ``bool`` (``true/false``, ``1/0``, ``yes/no``, ``on/off``)."""
        value = self._lookup(key, defaultValue)
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(
            f"configuration {normalize_key(key)} must be true or false, got {value!r}"
        )

    def getDuration(self, key: str, defaultValue: Any = _MISSING) -> float | None:
        """The value of ``key`` as seconds: a number or a string such as ``"200ms"``."""
        value = self._lookup(key, defaultValue)
        if value is None:
            return None
        return parse_duration(value, normalize_key(key))

    def getAll(self) -> list[tuple[str, str]]:
        """Every value that was set, as ``(key, string value)`` pairs, sorted by key."""
        return [(k, self.get(k)) for k in sorted(self._values)]  # type: ignore[misc]

    def toDebugString(self) -> str:
        """The set values, one ``key=value`` a line."""
        return "\n".join(f"{k}={v}" for k, v in self.getAll())

    def copy(self) -> Conf:
        """An independent copy of this configuration."""
        new = Conf()
        new._values = dict(self._values)
        new._defaults = self._defaults
        return new

    def __contains__(self, key: str) -> bool:
        return self.contains(key)

    def __repr__(self) -> str:
        return f"Conf({self.getAll()!r})"
