"""``StreamingListener``: PySpark's listener interface, as an adapter over ember's hooks.

Subclass :class:`StreamingListener`, override the ``on...`` methods you need and add it with
``ssc.addStreamingListener(listener)``. Each method gets an event object with PySpark's
accessors (``batchCompleted.batchInfo().totalDelay()``). Methods run on the driver in the
scheduler's threads; they must be quick and should not raise.
"""

from __future__ import annotations

from typing import Any

import attrs

from ember.events import BatchInfo, OutputOperationInfo, ReceiverInfo, Time
from ember.plugins import hookimpl

__all__ = [
    "StreamingListener",
    "StreamingListenerBatchCompleted",
    "StreamingListenerBatchStarted",
    "StreamingListenerBatchSubmitted",
    "StreamingListenerOutputOperationCompleted",
    "StreamingListenerOutputOperationStarted",
    "StreamingListenerReceiverError",
    "StreamingListenerReceiverStarted",
    "StreamingListenerReceiverStopped",
    "StreamingListenerStreamingStarted",
]


@attrs.frozen
class StreamingListenerStreamingStarted:
    """The streaming context started; ``time()`` is the first batch time (ms)."""

    _time: int

    def time(self) -> int:
        """The time streaming started (ms)."""
        return self._time


@attrs.frozen
class _BatchEvent:
    _batch_info: BatchInfo

    def batchInfo(self) -> BatchInfo:
        """The batch's :class:`~ember.events.BatchInfo`."""
        return self._batch_info


class StreamingListenerBatchSubmitted(_BatchEvent):
    """A batch was submitted."""


class StreamingListenerBatchStarted(_BatchEvent):
    """A batch started processing."""


class StreamingListenerBatchCompleted(_BatchEvent):
    """A batch completed."""


@attrs.frozen
class _OutputEvent:
    _output_operation_info: OutputOperationInfo

    def outputOperationInfo(self) -> OutputOperationInfo:
        """The output operation's :class:`~ember.events.OutputOperationInfo`."""
        return self._output_operation_info


class StreamingListenerOutputOperationStarted(_OutputEvent):
    """An output operation started."""


class StreamingListenerOutputOperationCompleted(_OutputEvent):
    """An output operation completed."""


@attrs.frozen
class _ReceiverEvent:
    _receiver_info: ReceiverInfo

    def receiverInfo(self) -> ReceiverInfo:
        """The receiver's :class:`~ember.events.ReceiverInfo`."""
        return self._receiver_info


class StreamingListenerReceiverStarted(_ReceiverEvent):
    """A receiver started."""


class StreamingListenerReceiverError(_ReceiverEvent):
    """A receiver reported an error."""


class StreamingListenerReceiverStopped(_ReceiverEvent):
    """A receiver stopped."""


class StreamingListener:
    """Receives streaming events; override the methods you need (all do nothing by default)."""

    def onStreamingStarted(self, streamingStarted: StreamingListenerStreamingStarted) -> None:
        """Called when the streaming context started."""

    def onReceiverStarted(self, receiverStarted: StreamingListenerReceiverStarted) -> None:
        """Called when a receiver started."""

    def onReceiverError(self, receiverError: StreamingListenerReceiverError) -> None:
        """Called when a receiver reported an error."""

    def onReceiverStopped(self, receiverStopped: StreamingListenerReceiverStopped) -> None:
        """Called when a receiver stopped."""

    def onBatchSubmitted(self, batchSubmitted: StreamingListenerBatchSubmitted) -> None:
        """Called when a batch's jobs were submitted."""

    def onBatchStarted(self, batchStarted: StreamingListenerBatchStarted) -> None:
        """Called when a batch started processing."""

    def onBatchCompleted(self, batchCompleted: StreamingListenerBatchCompleted) -> None:
        """Called when a batch completed."""

    def onOutputOperationStarted(
        self, outputOperationStarted: StreamingListenerOutputOperationStarted
    ) -> None:
        """Called when an output operation started."""

    def onOutputOperationCompleted(
        self, outputOperationCompleted: StreamingListenerOutputOperationCompleted
    ) -> None:
        """Called when an output operation completed."""


class _ListenerAdapter:
    """A hook plugin calling a :class:`StreamingListener`'s methods."""

    def __init__(self, listener: StreamingListener) -> None:
        self.listener = listener

    @hookimpl
    def ember_streaming_started(self, streaming_context: Any) -> None:
        self.listener.onStreamingStarted(
            StreamingListenerStreamingStarted(streaming_context.startTime or 0)
        )

    @hookimpl
    def ember_batch_submitted(self, batch: BatchInfo) -> None:
        self.listener.onBatchSubmitted(StreamingListenerBatchSubmitted(batch))

    @hookimpl
    def ember_batch_started(self, batch: BatchInfo) -> None:
        self.listener.onBatchStarted(StreamingListenerBatchStarted(batch))

    @hookimpl
    def ember_batch_completed(self, batch: BatchInfo) -> None:
        self.listener.onBatchCompleted(StreamingListenerBatchCompleted(batch))

    @hookimpl
    def ember_output_operation_started(self, op: OutputOperationInfo) -> None:
        self.listener.onOutputOperationStarted(StreamingListenerOutputOperationStarted(op))

    @hookimpl
    def ember_output_operation_completed(self, op: OutputOperationInfo) -> None:
        self.listener.onOutputOperationCompleted(StreamingListenerOutputOperationCompleted(op))

    @hookimpl
    def ember_receiver_started(self, receiver: ReceiverInfo) -> None:
        self.listener.onReceiverStarted(StreamingListenerReceiverStarted(receiver))

    @hookimpl
    def ember_receiver_error(self, receiver: ReceiverInfo) -> None:
        self.listener.onReceiverError(StreamingListenerReceiverError(receiver))

    @hookimpl
    def ember_receiver_stopped(self, receiver: ReceiverInfo) -> None:
        self.listener.onReceiverStopped(StreamingListenerReceiverStopped(receiver))


_ = Time  # re-exported for listeners that compare batch times
