"""Every error ember raises on purpose.

Each message says what went wrong and what to do next. Plugin errors name the kind, the
plugin, its distribution and version.
"""

from __future__ import annotations

__all__ = [
    "ConfigDefaultConflictError",
    "ContextError",
    "DuplicatePluginError",
    "EmberError",
    "FetchFailed",
    "JobError",
    "PluginError",
    "PluginLoadError",
    "PluginNotFoundError",
    "PluginVersionError",
    "RemoteTraceback",
    "SerializationError",
    "TaskError",
    "WorkerLostError",
]


class EmberError(Exception):
    """Base class of every error ember raises on purpose."""


# --------------------------------------------------------------------------- plugins


class PluginError(EmberError):
    """Base class of the errors about finding and loading plugins."""


class PluginNotFoundError(PluginError, LookupError):
    """No installed plugin of this kind has this name.

    :param kind: the plugin kind (``sources``, ``sinks``, ``serializers``, ``executors``).
    :param name: the name that was asked for.
    :param installed: the names of the plugins of this kind that are installed.
    :param hint: what to install to get it, when known (``pip install ember-mqtt``).
    """

    def __init__(
        self, kind: str, name: str, installed: list[str], hint: str | None = None
    ) -> None:
        self.kind = kind
        self.name = name
        self.installed = sorted(installed)
        self.hint = hint
        group = f"ember.{kind}"
        have = ", ".join(self.installed) if self.installed else "none"
        msg = f"no {kind[:-1] if kind.endswith('s') else kind} plugin named {name!r} is installed (entry-point group {group!r}; installed: {have})."
        if hint:
            msg += f" To get it: {hint}"
        else:
            msg += f" Install a distribution that registers {name!r} in {group!r}, or use one of the installed names."
        super().__init__(msg)


class PluginLoadError(PluginError, ImportError):
    """A plugin is installed but importing it failed; the original error is the ``__cause__``."""

    def __init__(
        self, kind: str, name: str, distribution: str | None, version: str | None, detail: str
    ) -> None:
        self.kind = kind
        self.name = name
        self.distribution = distribution
        self.version = version
        where = f"{distribution} {version}" if distribution else "an unknown distribution"
        super().__init__(
            f"the {kind} plugin {name!r} from {where} failed to load: {detail}. "
            f"Its own traceback is shown above; fix or reinstall {distribution or 'the plugin'}, "
            f"or uninstall it (`ember plugins --check` lists every broken plugin)."
        )
        self.name = name  # ImportError.__init__ resets ``name``; keep the plugin's name


class PluginVersionError(PluginError):
    """A plugin was built for a core API version this ember-core does not provide."""


# --------------------------------------------------------------------------- engine


class ContextError(EmberError, RuntimeError):
    """A context was used in a way its lifecycle does not allow (stopped, not started, ...)."""


class SerializationError(EmberError, TypeError):
    """A function or value could not be serialized to be sent to a worker."""


class RemoteTraceback(Exception):
    """The traceback text of an error raised in a worker, attached as ``__cause__``."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(text)

    def __str__(self) -> str:
        return "\n\n" + self.text


class TaskError(EmberError):
    """A task failed with an error that could not be carried back as itself.

    Raised instead of the user's exception only when that exception cannot be pickled; it
    carries the original type name, message and the remote traceback text.
    """

    def __init__(self, type_name: str, message: str, traceback_text: str) -> None:
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text
        super().__init__(f"{type_name}: {message}")


class JobError(EmberError):
    """A job could not complete for a reason other than the user's own error."""


class WorkerLostError(EmberError):
    """A worker process died while running tasks (for example killed with SIGKILL)."""


class FetchFailed(EmberError):
    """A reduce task could not read a shuffle map output (its file or its worker is gone).

    Raised inside the reduce task; the scheduler then forgets that map output, reruns the map
    task that made it and retries the reduce stage. Executors that keep map outputs
    themselves (:meth:`ember.executors.Executor.map_output_store`) raise it from ``read``.

    :param shuffle_id: the shuffle whose output is missing.
    :param map_id: the map task (partition of the shuffle's parent) that wrote it.
    :param detail: what went wrong, for the message.
    :param location: where the output lived (its map output's ``location``), when the whole
        place is gone (a dead worker): every map output there is then forgotten at once, as in
        Spark, instead of being found missing one failed stage at a time.
    """

    def __init__(self, shuffle_id: int, map_id: int, detail: str,
                 location: str | None = None) -> None:
        self.shuffle_id = shuffle_id
        self.map_id = map_id
        self.detail = detail
        self.location = location
        super().__init__(f"shuffle {shuffle_id} map output {map_id} is missing: {detail}")

    def __reduce__(self):  # keep the fields when pickled back to the driver
        return (FetchFailed, (self.shuffle_id, self.map_id, self.detail, self.location))


# --------------------------------------------------------------------------- plugins (conflicts)


class DuplicatePluginError(PluginError, LookupError):
    """More than one installed distribution registers the same plugin name in one group.

    ember never guesses which one is meant; the message names every distribution involved.

    :param kind: the plugin kind (``sources``, ``sinks``, ``serializers``, ``executors``,
        ``hooks``).
    :param name: the name registered more than once.
    :param providers: one description per registration, e.g.
        ``"ember-pickle 0.1.0 (ember_pickle:PickleSerializer)"``.
    :param distributions: the distribution names involved, used for the advice.
    """

    def __init__(
        self, kind: str, name: str, providers: list[str], distributions: list[str]
    ) -> None:
        self.kind = kind
        self.name = name
        self.providers = list(providers)
        self.distributions = list(distributions)
        group = "ember.hooks" if kind == "hooks" else f"ember.{kind}"
        keep = self.distributions[0] if self.distributions else "one of them"
        others = " ".join(self.distributions[1:]) or "the others"
        super().__init__(
            f"the {kind} plugin name {name!r} is registered in {group!r} by more than one "
            f"distribution: {'; '.join(self.providers)}. ember will not guess which one you "
            f"mean: uninstall all but one (for example keep {keep} and run "
            f"`pip uninstall {others}`)."
        )


class ConfigDefaultConflictError(PluginError, ValueError):
    """Two plugins give different default values for the same configuration key.

    Defaults are merged from every ``ember_config_defaults`` implementation; a later plugin
    may not silently replace a default another one (or ember-core) defines.

    :param key: the configuration key.
    :param first: ``(plugin, value)`` of the plugin that defined the key first.
    :param second: ``(plugin, value)`` of the plugin that defined it again differently.
    """

    def __init__(self, key: str, first: tuple[str, object], second: tuple[str, object]) -> None:
        self.key = key
        self.first = first
        self.second = second
        super().__init__(
            f"configuration key {key!r} gets conflicting defaults from two plugins: "
            f"{first[0]} sets {first[1]!r} and {second[0]} sets {second[1]!r}. A plugin may "
            f"only add defaults for its own keys: fix or uninstall one of them (setting the "
            f"key explicitly does not help; the defaults themselves must agree)."
        )
