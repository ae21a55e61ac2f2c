"""ember's streaming: StreamingContext, DStream and StreamingListener (PySpark's names)."""

from __future__ import annotations

from ember.streaming.context import StreamingContext, StreamingContextState
from ember.streaming.dstream import DStream
from ember.streaming.listener import StreamingListener

__all__ = ["DStream", "StreamingContext", "StreamingContextState", "StreamingListener"]
