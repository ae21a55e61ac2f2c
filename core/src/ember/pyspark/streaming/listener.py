"""``StreamingListener``: PySpark's listener interface (:class:`ember.streaming.StreamingListener`).

Subclass it and add it with ``ssc.addStreamingListener``; a PySpark listener's nested
``class Java: implements = [...]`` is harmless and may stay.
"""

from ember.streaming.listener import StreamingListener

__all__ = ["StreamingListener"]
