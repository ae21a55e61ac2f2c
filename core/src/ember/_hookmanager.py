"""The pluggy side of plugins: building the plugin manager and merging configuration defaults.

Internal; :func:`get_plugin_manager` and :func:`merged_config_defaults` are public as
``ember.plugins.get_plugin_manager`` and ``ember.plugins.merged_config_defaults``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

import pluggy

from ember._pluginbase import (
    API_VERSION,
    BUILTIN_HOOK_MODULES,
    CORE_DISTRIBUTION,
    HOOKS_GROUP,
    PluginRecord,
    _accepted_range,
    _core_version,
    _declared_api,
    _describe_provider,
    _dist,
    _entry_points,
    _first_line,
    _format_traceback,
    _safe_load,
    _version_problem,
    log,
)
from ember.errors import ConfigDefaultConflictError, DuplicatePluginError, PluginError


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _selection(ep: importlib.metadata.EntryPoint) -> str | None:
    """Why the hook plugin ``ep`` is switched off by the environment, or ``None``."""
    names = {ep.name, _dist(ep)[0]}
    disabled = _env_names("EMBER_DISABLE_PLUGINS") or set()
    if names & disabled:
        return "disabled: EMBER_DISABLE_PLUGINS"
    allowed = _env_names("EMBER_PLUGINS")
    if allowed is not None and not names & allowed:
        return "disabled: not in EMBER_PLUGINS"
    return None


def _hook_records_unloaded() -> list[PluginRecord]:
    records = [
        PluginRecord("hooks", name, CORE_DISTRIBUTION, _core_version(), module, status="builtin")
        for name, module in BUILTIN_HOOK_MODULES
    ]
    for ep in sorted(_entry_points(HOOKS_GROUP), key=lambda ep: (ep.name, ep.value)):
        distribution, version = _dist(ep)
        status = _selection(ep) or (
            "builtin" if distribution == CORE_DISTRIBUTION else "not loaded"
        )
        records.append(
            PluginRecord("hooks", ep.name, distribution, version, ep.value, status=status)
        )
    return records


class _EmberPluginManager(pluggy.PluginManager):
    """A pluggy plugin manager that remembers how its hook plugins were loaded."""

    def __init__(self) -> None:
        super().__init__("ember")
        #: One record per built-in hook module and ``ember.hooks`` entry point, as loaded.
        self.records: list[PluginRecord] = []
        #: Registration name -> "distribution version", for messages.
        self.providers: dict[str, str] = {}
        #: True when EMBER_TRACE_HOOKS is on: every hook call goes through pluggy.
        self.tracing = False


def _hook_names(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    callers = pm.get_hookcallers(plugin) or []
    return tuple(sorted(caller.name for caller in callers))


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    unknown = []
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.spec is None and any(
            impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls()
        ):
            unknown.append(caller.name)
    return sorted(unknown)


def _register_entry_point(
    pm: _EmberPluginManager, ep: importlib.metadata.EntryPoint
) -> PluginRecord:
    distribution, version = _dist(ep)
    base = {
        "kind": "hooks",
        "name": ep.name,
        "distribution": distribution,
        "version": version,
        "target": ep.value,
    }
    why = _selection(ep)
    if why is not None:
        return PluginRecord(**base, status=why)
    obj, exc = _safe_load(ep)
    if exc is None:
        problem = _version_problem(obj, "hooks", ep.name, distribution, version)
        if problem is not None:
            log.warning("hook plugin %r is not loaded: %s", ep.name, problem)
            return PluginRecord(
                **base,
                api_version=str(_declared_api(obj)),
                status=f"incompatible: built for ember plugin API {_declared_api(obj)}, "
                f"this ember-core accepts {_accepted_range()}",
                error=str(problem),
            )
        try:
            pm.register(obj, name=ep.name)
        except Exception as reg_exc:
            exc = reg_exc
    if exc is not None:
        log.warning(
            "hook plugin %r from %s failed to load and is disabled: %s",
            ep.name,
            _describe_provider(ep),
            _first_line(exc),
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return PluginRecord(
            **base, status=f"broken: {_first_line(exc)}", error=_format_traceback(exc)
        )
    unknown = _unknown_hooks(pm, obj)
    if unknown:
        pm.unregister(obj)
        known = sorted(name for name in dir(pm.hook) if name.startswith("ember_"))
        detail = (
            f"implements unknown hook(s) {', '.join(unknown)} (misspelt, or built for a newer "
            f"ember-core?); the hooks of this ember-core are: {', '.join(known)}. Mark a hook "
            f"that may be absent with @hookimpl(optionalhook=True)."
        )
        log.warning("hook plugin %r is disabled: %s", ep.name, detail)
        return PluginRecord(**base, status="broken: unknown hooks", error=detail)
    pm.providers[ep.name] = f"{distribution} {version}" if distribution else ep.value
    return PluginRecord(
        **base,
        api_version=str(_declared_api(obj)),
        status="builtin" if distribution == CORE_DISTRIBUTION else "ok",
        hooks=_hook_names(pm, obj),
    )


def _trace_hooks(pm: _EmberPluginManager) -> None:
    logger = logging.getLogger("ember.hooks.trace")
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("ember hook trace: %(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)

    def before(hook_name: str, impls: list, kwargs: Mapping[str, Any]) -> None:
        names = ", ".join(impl.plugin_name for impl in impls) or "no implementation"
        logger.info("%s(%s) -> %s", hook_name, ", ".join(kwargs), names)

    def after(outcome: Any, hook_name: str, impls: list, kwargs: Mapping[str, Any]) -> None:
        if outcome.exception is not None:
            logger.info("%s raised %s", hook_name, _first_line(outcome.exception))
        else:
            logger.info("%s returned %r", hook_name, outcome.get_result())

    pm.add_hookcall_monitoring(before, after)
    pm.tracing = True


def get_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """Build a new plugin manager with every hook plugin registered.

    A factory: each call builds and returns a fresh manager; nothing happens at import time.
    It adds the specification (:mod:`ember.hookspecs`), registers ember-core's built-in hook
    modules (:data:`BUILTIN_HOOK_MODULES`), then loads the ``ember.hooks`` entry points one at
    a time. A plugin that fails to import, that was built for an incompatible API, that does
    not validate against the specification or that implements an unknown hook is logged as a
    warning with its traceback, left out, and recorded for ``ember plugins``; it never stops
    the others. Finally ``check_pending()`` verifies every implementation has a hook.

    Environment switches (read at each call; names are entry-point or distribution names):

    - ``EMBER_DISABLE_PLUGINS=a,b``: do not load (or even import) these hook plugins; they
      also cannot be registered later under these names.
    - ``EMBER_PLUGINS=a,b``: load only these hook plugins; ``EMBER_PLUGINS=`` (empty) loads
      none. The built-in hook modules are always registered.
    - ``EMBER_TRACE_HOOKS=1``: log every hook call and its result (logger
      ``ember.hooks.trace``, to stderr unless logging is configured).

    :param load_entry_points: ``False`` registers only the built-in hook modules (tests).
    :returns: the plugin manager; its ``records`` attribute lists how each hook plugin was
        loaded (:class:`PluginRecord`).
    """
    from ember import hookspecs

    pm = _EmberPluginManager()
    pm.add_hookspecs(hookspecs)
    core_version = _core_version()
    for name, module_name in BUILTIN_HOOK_MODULES:
        module = importlib.import_module(module_name)
        pm.register(module, name=name)
        pm.providers[name] = f"{CORE_DISTRIBUTION} {core_version}"
        pm.records.append(
            PluginRecord(
                "hooks",
                name,
                CORE_DISTRIBUTION,
                core_version,
                module_name,
                api_version=API_VERSION,
                status="builtin",
                hooks=_hook_names(pm, module),
            )
        )
    builtin_names = {name for name, _ in BUILTIN_HOOK_MODULES}
    for name in sorted(_env_names("EMBER_DISABLE_PLUGINS") or ()):
        if name not in builtin_names:
            pm.set_blocked(name)
    if load_entry_points:
        eps = sorted(_entry_points(HOOKS_GROUP), key=lambda ep: (ep.name, ep.value))
        by_name: dict[str, list[importlib.metadata.EntryPoint]] = {}
        for ep in eps:
            by_name.setdefault(ep.name, []).append(ep)
        for ep in eps:
            if len(by_name[ep.name]) > 1 or ep.name in builtin_names:
                clash = by_name[ep.name]
                providers = [_describe_provider(other) for other in clash]
                dists = [d for d in (_dist(other)[0] for other in clash) if d]
                if ep.name in builtin_names:
                    target = dict(BUILTIN_HOOK_MODULES)[ep.name]
                    providers.insert(0, f"{CORE_DISTRIBUTION} {core_version} ({target})")
                    dists.insert(0, CORE_DISTRIBUTION)
                err = DuplicatePluginError("hooks", ep.name, providers, dists)
                log.warning("hook plugin %r is not loaded: %s", ep.name, err)
                pm.records.append(
                    PluginRecord(
                        "hooks",
                        ep.name,
                        *_dist(ep),
                        ep.value,
                        status="conflict: name registered more than once",
                        error=str(err),
                    )
                )
                continue
            pm.records.append(_register_entry_point(pm, ep))
    pm.check_pending()
    if os.environ.get("EMBER_TRACE_HOOKS", "").strip() not in ("", "0"):
        _trace_hooks(pm)
    return pm


def _describe_plugin(pm: pluggy.PluginManager, plugin: object) -> str:
    name = pm.get_name(plugin) or "?"
    provider = getattr(pm, "providers", {}).get(name)
    if name.isdigit():  # registered without a name: pluggy uses id()
        name = getattr(plugin, "__name__", None) or type(plugin).__qualname__
    return f"plugin {name!r} ({provider})" if provider else f"plugin {name!r}"


def _same(a: object, b: object) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return a is b


def merged_config_defaults(pm: pluggy.PluginManager) -> dict[str, Any]:
    """Merge the configuration defaults of every ``ember_config_defaults`` implementation.

    Implementations are called in registration order (ember-core's built-ins first). A key
    given by two plugins must have equal values (of the same type).

    :param pm: a plugin manager from :func:`get_plugin_manager`.
    :returns: a new dict of every default.
    :raises ember.errors.ConfigDefaultConflictError: two plugins give different defaults for
        one key; the message names both plugins and values.
    :raises ember.errors.PluginError: an implementation returned something other than a dict
        with string keys.
    """
    merged: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for impl in pm.hook.ember_config_defaults.get_hookimpls():
        if impl.hookwrapper or impl.wrapper:
            continue
        result = impl.function()
        if result is None:
            continue
        who = _describe_plugin(pm, impl.plugin)
        if not isinstance(result, Mapping):
            raise PluginError(
                f"{who} returned {type(result).__name__} from ember_config_defaults; it must "
                f"return a dict mapping configuration keys to default values (or None)."
            )
        for key, value in result.items():
            if not isinstance(key, str):
                raise PluginError(
                    f"{who} returned the non-string configuration key {key!r} from "
                    f"ember_config_defaults; keys are strings such as 'ember.myplugin.setting'."
                )
            if key in merged:
                if not _same(merged[key], value):
                    raise ConfigDefaultConflictError(key, (owners[key], merged[key]), (who, value))
                continue
            merged[key] = value
            owners[key] = who
    return merged
