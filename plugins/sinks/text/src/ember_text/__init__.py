"""The ``text`` sink for ember: ``DStream.saveAsTextFiles(prefix, suffix)``.

Each batch is written as the directory ``prefix-TIME_IN_MS[.suffix]`` (Spark's naming): one
``part-NNNNN`` file per partition holding ``str`` of each record, one record per line, and
an empty ``_SUCCESS`` marker. Read a batch back with ``Context.textFile(directory)``.

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

__all__ = ["TextSink"]


def _prefix(value: Any) -> str:
    return check_batch_prefix(value, "saveAsTextFiles", "out/words")


def _suffix(value: Any) -> str | None:
    return check_batch_suffix(value, "saveAsTextFiles", "txt")


@attrs.frozen
class TextSink(Sink):
    """Writes each batch as the text directory ``prefix-TIME_IN_MS[.suffix]``.

    Delivery: idempotent per batch time. Writing a batch time again replaces its directory in
    one step, so a batch re-run after a failure leaves exactly one copy of its output.

    :param prefix: the path prefix of the batch directories, e.g. ``"out/words"`` (a relative
        path is relative to the working directory when the batch is written; missing parent
        directories are created).
    :param suffix: an optional suffix, e.g. ``"txt"`` gives ``out/words-1700000000000.txt``.
    :raises TypeError: ``prefix`` is not a string (or path), or ``suffix`` not a string.
    :raises ValueError: ``prefix`` is empty, or ``suffix`` contains a path separator.

    >>> TextSink("out/words", "txt").path_for(1_700_000_000_000)
    'out/words-1700000000000.txt'
    """

    name = "text"
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
        batch time as it was) when a task fails.

        :param rdd: the batch's records; each is written as ``str(record)`` on its own line
            (``bytes`` records as they are).
        :param batch_time_ms: the batch time, milliseconds since the epoch.
        """
        write_batch_directory(rdd, self.path_for(batch_time_ms), "text")

    def describe(self) -> str:
        """``text files PREFIX-TIME_IN_MS[.SUFFIX]``."""
        return f"text files {self.prefix}-TIME_IN_MS" + (f".{self.suffix}" if self.suffix else "")
