"""``ReplaceMeSource``: the configuration of a replace_me stream — no connection, no thread.

A source is configuration only: building one opens nothing (the contract checks it), and it
pickles (checkpoints keep it). Validate options here, with messages that say what is expected,
so a bad option fails when the stream is made, not later in a thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from ember.receivers import ReceiverSource
from ember.sources import Delivery

if TYPE_CHECKING:
    from ember.receivers import Receiver

__all__ = ["ReplaceMeSource"]


def _check_port(_inst: Any, _attr: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"port must be a whole number from 1 to 65535, got {value!r:.80}")


def _check_seconds(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or value < 0):
        raise ValueError(f"{attr.name} must be a number of seconds >= 0, got {value!r:.80}")


# kw_only options: fields can be added later without breaking positional callers.
@attrs.frozen
class ReplaceMeSource(ReceiverSource):
    """Lines read from REPLACE_ME: ``ssc.stream("replace_me", host=..., port=...)``.

    Delivery: **at most once** (REPLACE_ME: say why — or at least once, and how).

    :param host: where REPLACE_ME listens.
    :param port: its TCP port.
    :param restartDelay: seconds before the first reconnection, doubled after each failure in
        a row; default the application's ``ember.streaming.receiverRestartDelay``.
    :param maxRestartDelay: the longest wait between reconnections (default 30 s).
    """

    #: The entry-point name.
    name = "replace_me"
    #: REPLACE_ME: Delivery.AT_LEAST_ONCE only if you acknowledge after storeMany returned.
    #: If the guarantee depends on options, make it a descriptor (see ember.sources).
    delivery = Delivery.AT_MOST_ONCE
    #: The ember plugin API this plugin was built for.
    api_version = "1.0"

    host: str = attrs.field(validator=attrs.validators.instance_of(str))
    port: int = attrs.field(validator=_check_port)
    restartDelay: float | None = attrs.field(default=None, kw_only=True,
                                             validator=_check_seconds)
    maxRestartDelay: float = attrs.field(default=30.0, kw_only=True, validator=_check_seconds)

    def restart_delay(self, failures: int, default: float) -> float:
        """The wait before reconnecting after ``failures`` failures in a row (1 or more)."""
        first = self.restartDelay if self.restartDelay is not None else default
        return min(first * 2 ** max(failures - 1, 0), max(self.maxRestartDelay, first))

    def createReceiver(self) -> Receiver:
        """A new receiver for each stream (the contract checks it is new each time)."""
        from ember_replace_me._receiver import ReplaceMeReceiver

        return ReplaceMeReceiver(self)

    # REPLACE_ME: to move per-record work off the driver, override createStream and map the
    # receiver's raw records in the workers, e.g.
    #     def createStream(self, ssc):
    #         return ssc.receiverStream(self.createReceiver()).mapPartitions(decode)
