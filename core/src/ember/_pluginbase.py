"""Shared pieces of plugin handling: constants, records, API versions, entry points.

Internal; the public names are re-exported by :mod:`ember.plugins`.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import traceback
from collections.abc import Iterable
from typing import Any

import attrs
import pluggy

from ember.errors import DuplicatePluginError, PluginVersionError

log = logging.getLogger("ember.plugins")

#: The plugin API version this ember-core provides. A plugin built for ``"M.m"`` fits when
#: ``M`` equals this major version and ``m`` is at most this minor version.
API_VERSION = "1.0"

#: The component kinds loaded by name; each is the entry-point group ``ember.<kind>``.
KINDS: tuple[str, ...] = ("sources", "sinks", "serializers", "executors")

#: The entry-point group of hook plugins (pluggy).
HOOKS_GROUP = "ember.hooks"

#: The distribution of ember-core; its own entry points are reported as ``builtin``.
CORE_DISTRIBUTION = "ember-core"

#: ember-core's own hook modules, registered first in every plugin manager under these names.
#: They are part of the core: ``EMBER_PLUGINS`` and ``EMBER_DISABLE_PLUGINS`` do not apply.
BUILTIN_HOOK_MODULES: tuple[tuple[str, str], ...] = (("defaults", "ember._defaults"),)

#: Marks a function of a hook plugin as an implementation of an ember hook
#: (re-exported as ``ember.hookimpl`` and ``ember.plugins.hookimpl``).
hookimpl = pluggy.HookimplMarker("ember")

_API_RE = re.compile(r"(\d+)\.(\d+)")


# --------------------------------------------------------------------------- records


def _to_tuple(value: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(value or ())


@attrs.frozen
class PluginRecord:
    """What ``ember plugins`` knows about one registered plugin.

    :ivar kind: ``sources``, ``sinks``, ``serializers``, ``executors`` or ``hooks``.
    :ivar name: the entry-point name (what users type), or a built-in hook module's name.
    :ivar distribution: the distribution that registers it, ``None`` if unknown.
    :ivar version: that distribution's version, ``None`` if unknown.
    :ivar target: what the entry point points at, ``module:attr`` (or a module).
    :ivar api_version: the plugin API version it declares (``None`` when not loaded).
    :ivar delivery: for sources and sinks, the delivery guarantee it declares (its
        ``delivery`` class attribute, as a string), else ``None``.
    :ivar status: ``"ok"``, ``"builtin"`` (ember-core's own, loaded fine), ``"not loaded"``
        (listed without importing), ``"disabled: <why>"``, ``"broken: <ExcType>: <msg>"``,
        ``"incompatible: <why>"`` or ``"conflict: <why>"``.
    :ivar error: the full traceback or explanation when broken/incompatible/conflicting.
    :ivar hooks: for hook plugins, the names of the hooks it implements.
    :ivar aliases: other names in the same group with the same target and distribution.
    """

    kind: str
    name: str
    distribution: str | None
    version: str | None
    target: str
    api_version: str | None = None
    delivery: str | None = None
    status: str = "ok"
    error: str | None = None
    hooks: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)
    aliases: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)

    @property
    def problem(self) -> bool:
        """Whether this plugin is broken, incompatible or conflicting (``ember plugins --check``)."""
        return self.status.startswith(("broken", "incompatible", "conflict"))

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form used by ``ember plugins --json``."""
        return {
            "kind": self.kind,
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "target": self.target,
            "api_version": self.api_version,
            "delivery": self.delivery,
            "aliases": list(self.aliases),
            "status": self.status,
            "error": self.error,
            "hooks": list(self.hooks),
        }


# --------------------------------------------------------------------------- API versions


def _parse_api(value: object) -> tuple[int, int] | None:
    if not isinstance(value, str):
        return None
    m = _API_RE.fullmatch(value.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def api_version_fits(plugin_api: str, core_api: str = API_VERSION) -> bool:
    """Whether a plugin built for ``plugin_api`` runs on a core providing ``core_api``.

    Same major version, and a minor version no newer than the core's. A malformed version
    never fits.

    :param plugin_api: the plugin's declared API version, ``"MAJOR.MINOR"``.
    :param core_api: the core's API version (default :data:`API_VERSION`).
    """
    plugin, core = _parse_api(plugin_api), _parse_api(core_api)
    if plugin is None or core is None:
        return False
    return plugin[0] == core[0] and plugin[1] <= core[1]


def _core_version() -> str:
    try:
        return importlib.metadata.version(CORE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "0+unknown"


def _declared_api(obj: object) -> object:
    return getattr(obj, "api_version", "1.0")


def _version_problem(
    obj: object, kind: str, name: str, distribution: str | None, version: str | None
) -> PluginVersionError | None:
    """The error refusing ``obj``, or ``None`` when its declared API version fits."""
    declared = _declared_api(obj)
    if isinstance(declared, str) and api_version_fits(declared):
        return None
    core_version = _core_version()
    core_minor = ".".join(core_version.split(".")[:2])
    major, minor = _parse_api(API_VERSION) or (1, 0)
    dist = distribution or "the plugin"
    who = f"{dist} {version}" if distribution and version else dist
    accepts = f"this ember-core {core_version} accepts plugins built for API {major}.0 up to {major}.{minor}."
    parsed = _parse_api(declared)
    if parsed is None:
        msg = (
            f"{who} ({kind} {name!r}) declares api_version {declared!r}, which is not of the "
            f"form 'MAJOR.MINOR'; {accepts} Fix the plugin's api_version attribute, or install "
            f"another release of {dist}."
        )
    elif parsed[0] < major:
        msg = (
            f"{who} ({kind} {name!r}) was built for ember plugin API {declared}; {accepts} "
            f"Install a newer release of {dist} built for ember plugin API {major}.x, or "
            f"install an older ember-core."
        )
    else:
        msg = (
            f"{who} ({kind} {name!r}) was built for ember plugin API {declared}; {accepts} "
            f"Install a release of {dist} built for ember-core {core_minor}, or upgrade "
            f"ember-core."
        )
    err = PluginVersionError(msg)
    err.kind, err.name = kind, name  # type: ignore[attr-defined]
    err.distribution, err.version = distribution, version  # type: ignore[attr-defined]
    err.api_version = declared  # type: ignore[attr-defined]
    return err


def _accepted_range() -> str:
    major, minor = _parse_api(API_VERSION) or (1, 0)
    return f"{major}.0 up to {major}.{minor}"


# --------------------------------------------------------------------------- entry points


def _group(kind: str) -> str:
    return HOOKS_GROUP if kind == "hooks" else f"ember.{kind}"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(
            f"unknown plugin kind {kind!r}; the kinds loaded by name are "
            f"{', '.join(KINDS)} (hook plugins are loaded by get_plugin_manager())."
        )


def _entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    """The entry points of ``group``, read fresh from the installed metadata."""
    return list(importlib.metadata.entry_points(group=group))


def _dist(ep: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    try:
        return dist.metadata["Name"], dist.version
    except Exception:  # pragma: no cover - damaged metadata
        return None, None


def _describe_provider(ep: importlib.metadata.EntryPoint) -> str:
    name, version = _dist(ep)
    where = f"{name} {version}" if name else "an unknown distribution"
    return f"{where} ({ep.value})"


def _duplicate_error(kind: str, name: str, eps: list[importlib.metadata.EntryPoint]):
    dists = [d for d in (_dist(ep)[0] for ep in eps) if d]
    return DuplicatePluginError(kind, name, [_describe_provider(ep) for ep in eps], dists)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _safe_load(ep: importlib.metadata.EntryPoint) -> tuple[Any, BaseException | None]:
    """Import one entry point; any failure (even SystemExit) is returned, never raised."""
    try:
        return ep.load(), None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a plugin must never take the host down
        return None, exc
