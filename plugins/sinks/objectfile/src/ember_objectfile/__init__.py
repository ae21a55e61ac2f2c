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

from typing import TYPE_CHECKING, Any

import attrs
from ember.sinks import (
    Delivery,
    Sink,
    batch_path,
    check_batch_prefix,
    check_batch_suffix,
    write_batch_directory,
)

if TYPE_CHECKING:
    from ember.rdd import RDD

__all__ = ["ObjectFileSink"]


def _prefix(value: Any) -> str:
    return check_batch_prefix(value, "saveAsObjectFiles", "out/events")


def _suffix(value: Any) -> str | None:
    return check_batch_suffix(value, "saveAsObjectFiles", "pkl")


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
