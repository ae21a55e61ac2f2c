"""The ``zeromq`` source for ember: ``ZeroMQUtils.createStream(ssc, publisherUrl, subscribe,
bytesToObjects)`` and ``ssc.stream("zeromq", ...)``.

A receiver subscribes to a ZeroMQ publisher (pyzmq) and stores the messages it sends — each
a list of frames — one block per block interval; ``bytesToObjects`` turns each message into
records in the workers. Delivery is at most once (ZeroMQ's publish/subscribe has no
acknowledgements). A lost connection is reported and the receiver reconnects with a backoff;
stopping closes the sockets with linger 0 and terminates the receiver's ZeroMQ context. See
:class:`ZeroMQSource` for every option.
"""

from __future__ import annotations

from ember_zeromq._receiver import ZeroMQReceiver
from ember_zeromq._source import ZeroMQSource, frames_as_bytes, last_frame_as_text
from ember_zeromq._utils import ZeroMQUtils

__all__ = [
    "ZeroMQReceiver",
    "ZeroMQSource",
    "ZeroMQUtils",
    "frames_as_bytes",
    "last_frame_as_text",
]
