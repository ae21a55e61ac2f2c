"""The ``twitter`` source for ember: ``TwitterUtils.createStream(ssc, filters)`` and
``ssc.stream("twitter", ...)`` read the X API v2 filtered stream (with rule management) or the
sampled stream, authenticated with an app's bearer token.

Twitter's v1.1 streaming API, which Spark's TwitterUtils used, is gone. A receiver reads the v2
stream's newline-delimited JSON with httpx, skips keep-alive newlines, reports and skips
malformed lines, treats a stall (no data, no keep-alive for ``stallTimeout`` seconds) as a
disconnection, and reconnects as the platform asks: linear backoff for network errors,
exponential for HTTP errors, the ``x-rate-limit-reset`` time for HTTP 429. See
:class:`TwitterSource` for every option and :mod:`ember_twitter.testing` for a local server
speaking the protocol.
"""

from __future__ import annotations

from ember_twitter._api import DEFAULT_BASE_URL, TOKEN_VARIABLES, XApiError
from ember_twitter._receiver import TwitterReceiver
from ember_twitter._source import TwitterSource
from ember_twitter._utils import TwitterUtils

__all__ = [
    "DEFAULT_BASE_URL",
    "TOKEN_VARIABLES",
    "TwitterReceiver",
    "TwitterSource",
    "TwitterUtils",
    "XApiError",
]
