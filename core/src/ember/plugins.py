"""Finding, loading and listing ember plugins.

ember has two plugin mechanisms, each for what it is good at:

- **Named components chosen by the user** (sources, sinks, serializers, executors) live in the
  entry-point groups ``ember.sources``, ``ember.sinks``, ``ember.serializers`` and
  ``ember.executors``. :func:`load_component` imports exactly one of them, by name, the first
  time it is asked for, through a stevedore ``DriverManager``.
- **Events and cross-cutting behaviour** are pluggy hooks (:mod:`ember.hookspecs`), implemented
  by ember-core's built-in hook modules and by the plugins in the entry-point group
  ``ember.hooks``. :func:`get_plugin_manager` builds a plugin manager holding them.

Nothing here does any work at import time: ``import ember`` imports no plugin and builds no
plugin manager.

Entry points are read with :func:`importlib.metadata.entry_points` on every uncached lookup,
never from stevedore's on-disk entry-point cache: that cache drops the distribution of each
entry point (so errors could not name it) and its key packs file modification times into
32-bit floats, which cannot tell apart two installs made within about two minutes of each
other, so a freshly installed plugin could stay invisible. Reading the metadata costs a few
milliseconds, once per component per process.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import threading
from collections.abc import Iterable
from typing import Any

import pluggy

from ember._hookmanager import _hook_records_unloaded, get_plugin_manager, merged_config_defaults
from ember._pluginbase import (
    API_VERSION,
    BUILTIN_HOOK_MODULES,
    CORE_DISTRIBUTION,
    HOOKS_GROUP,
    KINDS,
    PluginRecord,
    _accepted_range,
    _check_kind,
    _declared_api,
    _describe_provider,
    _dist,
    _duplicate_error,
    _entry_points,
    _first_line,
    _format_traceback,
    _group,
    _safe_load,
    _version_problem,
    api_version_fits,
    hookimpl,
    log,
)
from ember.errors import PluginLoadError, PluginNotFoundError

__all__ = [
    "API_VERSION",
    "BUILTIN_HOOK_MODULES",
    "CORE_DISTRIBUTION",
    "HOOKS_GROUP",
    "KINDS",
    "KNOWN_PLUGINS",
    "PluginRecord",
    "api_version_fits",
    "get_plugin_manager",
    "hookimpl",
    "list_plugins",
    "load_component",
    "merged_config_defaults",
]

#: Where the well-known plugins come from, by kind and name, for "not installed" hints.
KNOWN_PLUGINS: dict[str, dict[str, str]] = {
    "sources": {
        "socket": "ember-socket",
        "file": "ember-file",
        "queue": CORE_DISTRIBUTION,
        "mqtt": "ember-mqtt",
        "twitter": "ember-twitter",
        "zeromq": "ember-zeromq",
    },
    "sinks": {
        "text": "ember-text",
        "objects": "ember-objects",
        "objectfile": "ember-objectfile",
        "mqtt": "ember-mqtt",
    },
    "serializers": {
        "pickle": "ember-pickle",
        "cloudpickle": "ember-cloudpickle",
    },
    "executors": {
        "inline": CORE_DISTRIBUTION,
        "local": CORE_DISTRIBUTION,
        "dask": "ember-dask",
        "dask-local": "ember-dask",
    },
}


#: Marks a function of a hook plugin as an implementation of an ember hook
#: (re-exported as ``ember.hookimpl``).
def _hint(kind: str, name: str, installed: list[str]) -> str | None:
    dist = KNOWN_PLUGINS.get(kind, {}).get(name)
    if dist == CORE_DISTRIBUTION:
        return (
            f"{name!r} ships with ember-core itself, so its installation is damaged: "
            f"pip install --force-reinstall {CORE_DISTRIBUTION}"
        )
    if dist:
        return f"pip install {dist}"
    close = difflib.get_close_matches(name, installed, n=1)
    if close:
        return f"did you mean {close[0]!r}? (names are exact)"
    return None


# --------------------------------------------------------------------------- components

_LOADED: dict[tuple[str, str], type] = {}
_LOCK = threading.RLock()


@functools.cache
def _driver_manager_class() -> type:
    """A stevedore ``DriverManager`` fed with our entry points instead of stevedore's cache."""
    from stevedore import DriverManager

    class _EmberDriverManager(DriverManager):
        def __init__(self, namespace: str, name: str, entry_points: list, **kwargs: Any):
            self._ember_entry_points = list(entry_points)
            super().__init__(namespace, name, **kwargs)

        def list_entry_points(self) -> list:
            return list(self._ember_entry_points)

    return _EmberDriverManager


def load_component(kind: str, name: str) -> type:
    """Return the class registered as ``name`` in the entry-point group ``ember.<kind>``.

    Only that one entry point is imported, the first time it is asked for; the class is cached
    for the rest of the process. The caller instantiates it with the user's options.

    :param kind: ``sources``, ``sinks``, ``serializers`` or ``executors``.
    :param name: the entry-point name, the same string users type (``"mqtt"``, ``"pickle"``).
    :returns: the loaded class (or whatever object the entry point names).
    :raises ValueError: ``kind`` is not one of :data:`KINDS`.
    :raises ember.errors.PluginNotFoundError: nothing of that kind has that name; the
        message lists the installed names and what to install.
    :raises ember.errors.DuplicatePluginError: several distributions register that name.
    :raises ember.errors.PluginLoadError: importing the plugin raised; the plugin's own
        exception is the ``__cause__``.
    :raises ember.errors.PluginVersionError: the plugin was built for an incompatible API.
    """
    _check_kind(kind)
    key = (kind, name)
    loaded = _LOADED.get(key)
    if loaded is not None:
        return loaded
    with _LOCK:
        loaded = _LOADED.get(key)
        if loaded is None:
            loaded = _LOADED[key] = _load_component_uncached(kind, name)
    return loaded


def _load_component_uncached(kind: str, name: str) -> type:
    group = _group(kind)
    eps = _entry_points(group)
    matches = [ep for ep in eps if ep.name == name]
    if not matches:
        installed = sorted({ep.name for ep in eps})
        raise PluginNotFoundError(kind, name, installed, hint=_hint(kind, name, installed))
    if len(matches) > 1:
        raise _duplicate_error(kind, name, matches)
    ep = matches[0]
    distribution, version = _dist(ep)

    failures: list[BaseException] = []

    def load_failed(_manager: Any, _ep: Any, exc: BaseException) -> None:
        failures.append(exc)

    from stevedore.exception import NoMatches

    try:
        manager = _driver_manager_class()(
            group,
            name,
            entry_points=[ep],
            invoke_on_load=False,
            on_load_failure_callback=load_failed,
            on_missing_entrypoints_callback=None,
        )
    except NoMatches:
        if not failures:  # pragma: no cover - the entry point was there a moment ago
            raise PluginNotFoundError(kind, name, [ep.name], hint=None) from None
        exc = failures[0]
        raise PluginLoadError(kind, name, distribution, version, _first_line(exc)) from exc
    except (AssertionError, SystemExit) as exc:  # stevedore lets these two through
        raise PluginLoadError(kind, name, distribution, version, _first_line(exc)) from exc
    component = manager.driver
    problem = _version_problem(component, kind, name, distribution, version)
    if problem is not None:
        raise problem
    log.debug("loaded %s plugin %r from %s", kind, name, _describe_provider(ep))
    return component


# --------------------------------------------------------------------------- listing


def _delivery(obj: object) -> str | None:
    value = getattr(obj, "delivery", None)
    if value is None:
        return None
    value = getattr(value, "value", value)
    return str(value)


def _component_records(kind: str, load: bool) -> list[PluginRecord]:
    eps = sorted(_entry_points(_group(kind)), key=lambda ep: (ep.name, ep.value))
    by_name: dict[str, list[importlib.metadata.EntryPoint]] = {}
    by_target: dict[tuple[str | None, str], list[str]] = {}
    for ep in eps:
        by_name.setdefault(ep.name, []).append(ep)
        by_target.setdefault((_dist(ep)[0], ep.value), []).append(ep.name)
    records = []
    for ep in eps:
        distribution, version = _dist(ep)
        fields: dict[str, Any] = {
            "kind": kind,
            "name": ep.name,
            "distribution": distribution,
            "version": version,
            "target": ep.value,
            "aliases": [n for n in by_target[(distribution, ep.value)] if n != ep.name],
        }
        builtin = distribution == CORE_DISTRIBUTION
        if len(by_name[ep.name]) > 1:
            err = _duplicate_error(kind, ep.name, by_name[ep.name])
            others = [_describe_provider(o) for o in by_name[ep.name] if o is not ep]
            fields.update(
                status=f"conflict: also registered by {', '.join(others)}", error=str(err)
            )
        elif not load:
            fields.update(status="builtin" if builtin else "not loaded")
        else:
            obj, exc = _safe_load(ep)
            if exc is not None:
                fields.update(status=f"broken: {_first_line(exc)}", error=_format_traceback(exc))
            else:
                declared = _declared_api(obj)
                fields.update(
                    api_version=str(declared),
                    delivery=_delivery(obj) if kind in ("sources", "sinks") else None,
                )
                problem = _version_problem(obj, kind, ep.name, distribution, version)
                if problem is not None:
                    fields.update(
                        status=f"incompatible: built for ember plugin API {declared}, "
                        f"this ember-core accepts {_accepted_range()}",
                        error=str(problem),
                    )
                else:
                    fields.update(status="builtin" if builtin else "ok")
        records.append(PluginRecord(**fields))
    return records


def list_plugins(
    load: bool = True,
    kinds: Iterable[str] | None = None,
    *,
    pm: pluggy.PluginManager | None = None,
) -> list[PluginRecord]:
    """Describe every installed plugin, one record per registration.

    Never raises because of a plugin: a plugin that fails to import is reported as
    ``broken`` with its traceback in :attr:`PluginRecord.error`.

    :param load: import each plugin to check it, read its API version and delivery guarantee
        and (for hook plugins) the hooks it implements. With ``False`` nothing is imported and
        only the installed metadata is read.
    :param kinds: restrict to these kinds (default: every kind, then ``hooks``).
    :param pm: with ``load``, describe the hook plugins as loaded by this manager (from
        :func:`get_plugin_manager`) instead of building a new one.
    :returns: the records, grouped by kind in the order of :data:`KINDS` then ``hooks``, and
        sorted by name within a kind (built-in hook modules first).
    """
    wanted = list(kinds) if kinds is not None else [*KINDS, "hooks"]
    for kind in wanted:
        if kind != "hooks":
            _check_kind(kind)
    records: list[PluginRecord] = []
    for kind in [*KINDS, "hooks"]:
        if kind not in wanted:
            continue
        if kind == "hooks":
            if load:
                manager = pm if pm is not None else get_plugin_manager()
                records.extend(getattr(manager, "records", []))
            else:
                records.extend(_hook_records_unloaded())
        else:
            records.extend(_component_records(kind, load))
    return records


def _reset_caches() -> None:
    """Forget every loaded component (for tests that change the installed plugins)."""
    with _LOCK:
        _LOADED.clear()
    importlib.invalidate_caches()


# The public names defined in the internal modules are documented as ember.plugins.*.
for _public in (PluginRecord, api_version_fits, get_plugin_manager, merged_config_defaults):
    _public.__module__ = __name__
del _public
