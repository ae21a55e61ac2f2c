"""ember's streaming: StreamingContext, DStream and StreamingListener (PySpark's names)."""

from __future__ import annotations

from ember.streaming._checkpoint import CheckpointError
from ember.streaming.context import StreamingContext, StreamingContextState
from ember.streaming.dstream import DStream
from ember.streaming.listener import StreamingListener
from ember.streaming.state import State, StateSpec

__all__ = [
    "CheckpointError",
    "DStream",
    "State",
    "StateSpec",
    "StreamingContext",
    "StreamingContextState",
    "StreamingListener",
]
