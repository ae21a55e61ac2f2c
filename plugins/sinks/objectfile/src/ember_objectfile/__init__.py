"""The ``objectfile`` sink for ember: ``DStream.saveAsObjectFiles(prefix, suffix)``.

Each batch is written as the directory ``prefix-TIME_IN_MS[.suffix]`` (Spark's naming): one
``part-NNNNN`` file per partition holding the records serialized with the context's data
serializer (``ember.serializer``, pickle by default), and an empty ``_SUCCESS`` marker. Read a
batch back, records and types intact, with ``Context.pickleFile(directory)``.

The directory is built under a hidden temporary name beside its final name and renamed into
place once every partition is written, so a reader never sees a half-written batch, and a
batch written again (re-run after a failure) replaces the earlier directory instead of adding
to it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import attrs
from ember.sinks import Delivery, Sink, batch_path, write_batch_directory

if TYPE_CHECKING:
    from ember.rdd import RDD

__all__ = ["ObjectFileSink"]


def _prefix(value: Any) -> str:
    """The prefix as a ``str`` path (``~`` expanded), or a clear error."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(
            f"saveAsObjectFiles' prefix must be a path string such as 'out/events' (each batch "
            f"is written to the directory 'out/events-TIME_IN_MS'), got "
            f"{type(value).__name__}: {value!r:.80}"
        )
    if not value.strip():
        raise ValueError(
            "saveAsObjectFiles' prefix must not be empty: give a path such as 'out/events' "
            "(each batch is written to the directory 'out/events-TIME_IN_MS')"
        )
    if "\x00" in value:
        raise ValueError(f"saveAsObjectFiles' prefix contains a NUL character: {value!r:.80}")
    return os.path.expanduser(value)


def _suffix(value: Any) -> str | None:
    """The suffix (``None`` or ``""`` for none), or a clear error."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(
            f"saveAsObjectFiles' suffix must be a string such as 'pkl' or None, got "
            f"{type(value).__name__}: {value!r:.80}"
        )
    if "/" in value or os.sep in value or "\x00" in value:
        raise ValueError(
            f"saveAsObjectFiles' suffix ends the directory name ('prefix-TIME_IN_MS.suffix') "
            f"and cannot contain a path separator or NUL: {value!r:.80}"
        )
    return value


@attrs.frozen
class ObjectFileSink(Sink):
    """Writes each batch's records, serialized, as the directory ``prefix-TIME_IN_MS[.suffix]``.

    Delivery: idempotent per batch time. Writing a batch time again replaces its directory in
    one step, so a batch re-run after a failure leaves exactly one copy of its output.

    :param prefix: the path prefix of the batch directories, e.g. ``"out/events"`` (a
        relative path is relative to the working directory when the batch is written; missing
        parent directories are created).
    :param suffix: an optional suffix, e.g. ``"pkl"`` gives ``out/events-1700000000000.pkl``.
    :raises TypeError: ``prefix`` is not a string (or path), or ``suffix`` not a string.
    :raises ValueError: ``prefix`` is empty, or ``suffix`` contains a path separator.

    >>> ObjectFileSink("out/events").path_for(1_700_000_000_000)
    'out/events-1700000000000'
    """

    name = "objectfile"
    api_version = "1.0"
    delivery = Delivery.IDEMPOTENT_PER_BATCH_TIME

    prefix: str = attrs.field(converter=_prefix)
    suffix: str | None = attrs.field(default=None, converter=_suffix)

    def path_for(self, batch_time_ms: int) -> str:
        """The directory batch ``batch_time_ms`` is written to: ``prefix-TIME_IN_MS[.suffix]``.

        :param batch_time_ms: the batch time, milliseconds since the epoch.
        """
        return batch_path(self.prefix, batch_time_ms, self.suffix)

    def write_batch(self, rdd: RDD, batch_time_ms: int) -> None:
        """Write ``rdd`` as the directory :meth:`path_for` ``(batch_time_ms)``, atomically.

        Returns once the directory is in place; raises (leaving any earlier write of this
        batch time as it was) when a task fails or a record cannot be serialized.

        :param rdd: the batch's records, serialized with the context's data serializer.
        :param batch_time_ms: the batch time, milliseconds since the epoch.
        """
        write_batch_directory(rdd, self.path_for(batch_time_ms), "pickle")

    def describe(self) -> str:
        """``object files PREFIX-TIME_IN_MS[.SUFFIX]``."""
        return f"object files {self.prefix}-TIME_IN_MS" + (
            f".{self.suffix}" if self.suffix else ""
        )
