"""``SparkContext``: PySpark's name and constructor for :class:`ember.Context`."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

from ember.conf import Conf
from ember.context import Context

__all__ = ["SparkContext"]

#: PySpark's log levels (``sc.setLogLevel``), as :mod:`logging` levels of the ``ember`` logger.
LOG_LEVELS: dict[str, int] = {
    "ALL": logging.NOTSET + 1,
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "OFF": logging.CRITICAL + 10,
}


class SparkContext(Context):
    """PySpark's ``SparkContext``: an :class:`ember.Context` with PySpark's constructor.

    It takes PySpark's arguments, in PySpark's order, so ``SparkContext("local[2]", "app")``
    and ``SparkContext(appName="app", conf=conf)`` work unchanged. The arguments that only
    make sense with a JVM or a cluster are handled as follows:

    - ``sparkHome``, ``batchSize``: accepted and ignored (there is no Spark installation, and
      ember batches records for serialization itself).
    - ``environment``: environment variables of the worker processes (as
      ``conf.setExecutorEnv``).
    - ``serializer``: the *name* of an ember serializer plugin (``"pickle"``,
      ``"cloudpickle"``), as ``ember.serializer``; a PySpark serializer object is refused.
    - ``pyFiles``: refused when not empty. ember's workers run on this machine in this Python
      environment: install the modules, or put their directory on ``PYTHONPATH``.
    - ``gateway``, ``jsc``: refused when given; ember has no JVM.
    - ``profiler_cls``, ``udf_profiler_cls``, ``memory_profiler_cls``: ignored with a
      warning; ember does not profile Python workers.

    :param master: where tasks run (``"local[N]"``, ``"inline"``, a plugin URL).
    :param appName: the application name.
    :param conf: a :class:`ember.Conf` (PySpark's ``SparkConf``); ``spark.*`` keys work.
    :raises ValueError: for ``pyFiles``, ``gateway`` or ``jsc`` (see above).
    :raises TypeError: for a serializer object.
    """

    def __init__(
        self,
        master: str | None = None,
        appName: str | None = None,
        sparkHome: str | None = None,
        pyFiles: list[str] | None = None,
        environment: Mapping[str, str] | None = None,
        batchSize: int = 0,
        serializer: str | None = None,
        conf: Conf | None = None,
        gateway: Any = None,
        jsc: Any = None,
        profiler_cls: Any = None,
        udf_profiler_cls: Any = None,
        memory_profiler_cls: Any = None,
    ) -> None:
        if gateway is not None or jsc is not None:
            raise ValueError(
                "SparkContext: ember has no JVM, so `gateway` and `jsc` cannot be used; "
                "leave them out"
            )
        if pyFiles:
            raise ValueError(
                "SparkContext: pyFiles is not supported. ember's workers are processes on this "
                "machine running this Python environment: install your modules into it "
                "(pip install -e .) or put their directory on PYTHONPATH before starting the "
                f"program (got pyFiles={list(pyFiles)!r})"
            )
        ignored = [name for name, value in (("profiler_cls", profiler_cls),
                                             ("udf_profiler_cls", udf_profiler_cls),
                                             ("memory_profiler_cls", memory_profiler_cls))
                   if value is not None]
        if ignored:
            warnings.warn(
                f"SparkContext: ember does not profile Python workers; {', '.join(ignored)} "
                f"ignored",
                UserWarning,
                stacklevel=2,
            )
        if environment or serializer is not None:
            conf = conf.copy() if conf is not None else Conf()
            if environment:
                conf.setExecutorEnv(pairs=[(str(k), str(v)) for k, v in environment.items()])
            if serializer is not None:
                if not isinstance(serializer, str):
                    raise TypeError(
                        f"SparkContext: serializer must be the name of an ember serializer "
                        f"plugin ('pickle', 'cloudpickle'; see `ember plugins`), got a "
                        f"{type(serializer).__name__}; PySpark serializer objects do not apply"
                    )
                conf.set("ember.serializer", serializer)
        super().__init__(master, appName, conf)

    @classmethod
    def getOrCreate(cls, conf: Conf | None = None) -> Context:
        """The active context, or a new :class:`SparkContext` built from ``conf``.

        :param conf: used only when no context is active.
        """
        return super().getOrCreate(conf)

    def setLogLevel(self, logLevel: str) -> None:
        """Set the level of ember's log messages (logger ``ember``).

        :param logLevel: one of PySpark's levels: ``ALL``, ``DEBUG``, ``ERROR``, ``FATAL``,
            ``INFO``, ``OFF``, ``TRACE``, ``WARN`` (any case).
        :raises ValueError: for another level.
        """
        level = LOG_LEVELS.get(str(logLevel).upper())
        if level is None:
            raise ValueError(
                f"unknown log level {logLevel!r}; use one of {', '.join(sorted(LOG_LEVELS))}"
            )
        logging.getLogger("ember").setLevel(level)
