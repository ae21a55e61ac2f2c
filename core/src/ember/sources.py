"""The source plugin contract: what makes an input DStream.

Sources register in the entry-point group ``ember.sources``; ``ssc.stream(name, **options)``
builds the named source's class with the options and asks it for a stream. There are two
families:

- :class:`PullSource`: computes each batch itself, on the driver, at the batch time (files
  that appeared, a queue of RDDs). No receiver and no worker slot is taken.
- receiver-based sources (``ReceiverSource``, in :mod:`ember.receivers`): a ``Receiver``
  runs in a thread and stores records as they arrive.

Rules:

- A source object is configuration only: building one opens no socket and starts no thread;
  runtime state is created when the stream starts.
- ``delivery`` states the guarantee it gives (:class:`Delivery`), shown by ``ember plugins``.
  When the guarantee depends on the options (an MQTT source is at least once at QoS 1 with a
  persistent session, at most once at QoS 0), make ``delivery`` a descriptor that gives the
  strongest guarantee on the class (what ``ember plugins`` shows) and the guarantee of the
  configuration on an instance (what the source contract checks)::

      class _Delivery:
          def __get__(self, obj, owner=None):
              if obj is None:
                  return Delivery.AT_LEAST_ONCE
              return Delivery.AT_LEAST_ONCE if obj.qos else Delivery.AT_MOST_ONCE

      class MQTTSource(ReceiverSource):
          delivery = _Delivery()
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ember.rdd import RDD
    from ember.streaming.context import StreamingContext
    from ember.streaming.dstream import DStream

__all__ = ["Delivery", "PullSource", "Source"]


class Delivery(str, enum.Enum):
    """The delivery guarantee of a source or a sink."""

    #: Records may be lost on failure, never duplicated.
    AT_MOST_ONCE = "at-most-once"
    #: Records are never lost but may be delivered more than once after a failure.
    AT_LEAST_ONCE = "at-least-once"
    #: Writing the same batch time again replaces the earlier write (sinks).
    IDEMPOTENT_PER_BATCH_TIME = "idempotent-per-batch-time"
    #: Every record is processed exactly once, also across driver failures (with the WAL).
    EXACTLY_ONCE = "exactly-once"


class Source(ABC):
    """Base of every source plugin; subclass :class:`PullSource` or ``ReceiverSource``."""

    #: The user-visible name (the entry point's name).
    name: ClassVar[str] = ""
    #: The ember plugin API version this source was built for.
    api_version: ClassVar[str] = "1.0"
    #: The guarantee this source gives.
    delivery: ClassVar[Delivery] = Delivery.AT_MOST_ONCE

    @abstractmethod
    def createStream(self, ssc: StreamingContext) -> DStream:
        """Register and return the input DStream of this source in ``ssc``."""


class PullSource(Source):
    """A source that computes each batch on the driver, at the batch time.

    Subclasses implement :meth:`compute`. ``compute`` is called once per batch time, in
    increasing order, from the streaming scheduler's thread; it must not block for long.
    """

    @abstractmethod
    def compute(self, ssc: StreamingContext, batch_time_ms: int) -> tuple[RDD, int | None]:
        """The RDD of batch ``batch_time_ms`` and its number of records (``None`` if unknown)."""

    def start(self, ssc: StreamingContext) -> None:
        """Called once when the streaming context starts."""

    def stop(self) -> None:
        """Called once when the streaming context stops; release what ``start`` made."""

    def describe(self) -> str:
        """A one-line description for logs and the UI."""
        return type(self).__name__

    def createStream(self, ssc: StreamingContext) -> DStream:
        from ember.streaming._dstreams import PullInputDStream

        return PullInputDStream(ssc, self)

    def snapshot(self) -> Any:
        """State to save in a checkpoint (positions, processed files); ``None`` if none.

        Called right after batch ``t`` was generated (and after batches complete), so the
        snapshot describes the source *after* it handed out batch ``t``'s data. On recovery
        the scheduler re-runs batch ``t`` and recomputes the batches before it that the
        state still needs (back to the last saved state), calling :meth:`compute` again for
        their times: for every time not yet passed to :meth:`forget`, ``compute`` must give
        the same data as the first time. Only later times may bring new data.
        """
        return None

    def restore(self, state: Any) -> None:
        """Restore state returned by :meth:`snapshot` when recovering from a checkpoint."""

    def forget(self, before_ms: int) -> None:
        """Batches before ``before_ms`` will never be recomputed: drop what was kept for them.

        Called after every batch with the stream's remember window, which covers twice the
        checkpoint interval of any stateful stream downstream.
        """
