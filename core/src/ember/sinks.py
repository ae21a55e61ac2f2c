"""The sink plugin contract: where an output operation writes a batch.

Sinks register in the entry-point group ``ember.sinks``. An output operation such as
``saveAsTextFiles`` builds its sink with the user's options and calls :meth:`Sink.write_batch`
once per batch, in the streaming scheduler's job thread.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from ember.sources import Delivery

if TYPE_CHECKING:
    from ember.rdd import RDD

__all__ = [
    "Delivery",
    "Sink",
    "batch_path",
    "check_batch_prefix",
    "check_batch_suffix",
    "write_batch_directory",
]


class Sink(ABC):
    """Writes one batch's RDD for one batch time.

    Rules:

    - ``write_batch`` returns only when the batch is written (or raises).
    - A sink that can be idempotent per batch time is: writing the same batch time again
      replaces the earlier write instead of adding to it (file sinks write to a temporary
      name and rename), so a batch re-run after a failure does not duplicate output.
    - ``delivery`` states the guarantee (:class:`ember.sources.Delivery`).
    - Building a sink opens nothing; it is configuration only and must be picklable.
    """

    #: The user-visible name (the entry point's name).
    name: ClassVar[str] = ""
    #: The ember plugin API version this sink was built for.
    api_version: ClassVar[str] = "1.0"
    #: The guarantee this sink gives.
    delivery: ClassVar[Delivery] = Delivery.AT_LEAST_ONCE

    @abstractmethod
    def write_batch(self, rdd: RDD, batch_time_ms: int) -> None:
        """Write ``rdd``, the data of batch ``batch_time_ms`` (ms since the epoch)."""

    def describe(self) -> str:
        """A short description for the output operation's name in listeners and the UI."""
        return type(self).__name__


def batch_path(prefix: str, batch_time_ms: int, suffix: str | None = None) -> str:
    """``prefix-TIME_IN_MS[.suffix]``: the path of one batch's output (Spark's naming)."""
    path = f"{prefix}-{batch_time_ms}"
    return f"{path}.{suffix}" if suffix else path


def check_batch_prefix(value: Any, operation: str, example: str) -> str:
    """The prefix of :func:`batch_path` as a ``str`` path (``~`` expanded), or a clear error.

    :param operation: the output operation, for messages (``"saveAsTextFiles"``).
    :param example: a prefix to show, for messages (``"out/words"``).
    :raises TypeError: ``value`` is not a string or path.
    :raises ValueError: ``value`` is empty or holds a NUL character.
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(
            f"{operation}' prefix must be a path string such as {example!r} (each batch is "
            f"written to the directory '{example}-TIME_IN_MS'), got "
            f"{type(value).__name__}: {value!r:.80}"
        )
    if not value.strip():
        raise ValueError(
            f"{operation}' prefix must not be empty: give a path such as {example!r} (each "
            f"batch is written to the directory '{example}-TIME_IN_MS')"
        )
    if "\x00" in value:
        raise ValueError(f"{operation}' prefix contains a NUL character: {value!r:.80}")
    return os.path.expanduser(value)


def check_batch_suffix(value: Any, operation: str, example: str) -> str | None:
    """The suffix of :func:`batch_path` (``None`` or ``""`` for none), or a clear error.

    :raises TypeError: ``value`` is not a string.
    :raises ValueError: ``value`` holds a path separator or NUL.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(
            f"{operation}' suffix must be a string such as {example!r} or None, got "
            f"{type(value).__name__}: {value!r:.80}"
        )
    if "/" in value or os.sep in value or "\x00" in value:
        raise ValueError(
            f"{operation}' suffix ends the directory name ('prefix-TIME_IN_MS.suffix') and "
            f"cannot contain a path separator or NUL: {value!r:.80}"
        )
    return value


def write_batch_directory(rdd: RDD, path: str, fmt: str) -> None:
    """Write ``rdd`` as the directory ``path``, atomically, replacing an earlier write.

    :param fmt: ``"text"`` (``str`` of each record, a line each, like ``saveAsTextFile``) or
        ``"pickle"`` (the configured serializer, readable with ``Context.pickleFile``).

    The partitions are written into a temporary directory beside ``path`` that is renamed
    into place when all are written (with ``_SUCCESS``); a reader never sees a half-written
    batch, and re-running the batch replaces the directory in one step.
    """
    if fmt not in ("text", "pickle"):
        raise ValueError(f"fmt must be 'text' or 'pickle', got {fmt!r}")
    parent = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    os.makedirs(parent, exist_ok=True)
    rdd.ctx._save_partitions(rdd, path, fmt, False, replace=True)
