"""``TwitterSource``: the configuration of a stream of posts from the X API v2."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from ember.receivers import ReceiverSource
from ember.sources import Delivery
from ember.storagelevel import StorageLevel

from ember_twitter._api import DEFAULT_BASE_URL, FILTER_PATH, SAMPLE_PATH, resolve_token

if TYPE_CHECKING:
    from ember.receivers import Receiver

__all__ = ["TwitterSource"]

_FIELD_OPTIONS = ("tweetFields", "expansions", "userFields", "mediaFields", "placeFields",
                  "pollFields")


def _filters(value: Any) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, Mapping)):
        value = [value]
    out = []
    for item in value:
        if isinstance(item, Mapping):
            if not isinstance(item.get("value"), str) or not item["value"].strip():
                raise ValueError(f"a rule needs a non-empty 'value', got {dict(item)!r:.100}")
            out.append(tuple(sorted((str(k), str(v)) for k, v in item.items())))
        elif isinstance(item, str) and item.strip():
            out.append(item)
        else:
            raise ValueError(f"a filter is a rule value such as '#python lang:en' or a "
                             f"{{'value': ..., 'tag': ...}} dict, got {item!r:.80}")
    return tuple(out)


def _fields(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    return tuple(str(v).strip() for v in value if str(v).strip())


def _check_kind(_inst: Any, _attr: Any, value: Any) -> None:
    if value not in (None, "sample", "filtered"):
        raise ValueError(f"stream must be 'sample' or 'filtered' (default: filtered when "
                         f"filters are given, else sample), got {value!r:.80}")


def _check_url(_inst: Any, _attr: Any, value: Any) -> None:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"baseUrl must be an http(s) URL such as {DEFAULT_BASE_URL!r}, got "
                         f"{value!r:.100}")


def _check_seconds(positive: bool) -> Any:
    def check(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            value > 0 if positive else value >= 0)
        if not ok:
            bound = "positive" if positive else "zero or positive"
            raise ValueError(f"{attr.name} must be a {bound} number of seconds, got "
                             f"{value!r:.80}")

    return check


def _check_backfill(_inst: Any, _attr: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        raise ValueError(f"backfillMinutes must be a whole number from 0 to 5, got {value!r:.80}")


def _check_storage_level(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, StorageLevel):
        raise TypeError(f"storageLevel must be an ember StorageLevel, got {value!r:.80}")


def _check_token(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError("bearerToken must be a non-empty string (or None: read it from "
                         "X_BEARER_TOKEN or TWITTER_BEARER_TOKEN)")


@attrs.frozen
class TwitterSource(ReceiverSource):
    """A stream of posts (tweets) from the X API v2:
    :meth:`TwitterUtils.createStream <ember_twitter.TwitterUtils.createStream>` or
    ``ssc.stream("twitter", filters=[...])``.

    Records are post dicts: the ``data`` object of each message of the stream (``id``,
    ``text`` and the fields asked for), with the message's ``includes`` and, on the filtered
    stream, ``matching_rules`` added under those keys when present.

    With ``filters``, the **filtered stream** (``/2/tweets/search/stream``): before it
    connects, the receiver adds each filter the stream's rules do not have yet as a rule
    (rules belong to the app, not to a connection; they are never deleted automatically —
    see :meth:`TwitterUtils.deleteRules <ember_twitter.TwitterUtils.deleteRules>`). Without,
    the **sampled stream** (``/2/tweets/sample/stream``), or the filtered stream with the
    app's existing rules when ``stream="filtered"``.

    Reconnection follows the platform's rules: network errors and stalls back off linearly
    (``networkBackoffStep`` more each time, up to ``networkBackoffMax``), HTTP errors
    exponentially (``httpBackoffStart`` doubling up to ``httpBackoffMax``), and HTTP 429 waits
    until the ``x-rate-limit-reset`` time the answer gives (else ``rateLimitBackoffStart``,
    doubling). A stream that sends neither data nor its keep-alive newline for
    ``stallTimeout`` seconds is a disconnection. Every failure is reported to listeners.

    Delivery: **at most once** — a stream cannot be acknowledged; posts sent while
    disconnected are missed unless ``backfillMinutes`` (an access level that allows it) asks
    for them again on reconnection, which may then deliver some twice.

    :param filters: rule values (``"#python lang:en"``) or ``{"value": ..., "tag": ...}``
        dicts for the filtered stream; ``None`` for the sampled stream.
    :param stream: ``"sample"`` or ``"filtered"`` (default: filtered when ``filters``).
    :param bearerToken: the app's bearer token (left out of ``repr``); default: the
        environment variable ``X_BEARER_TOKEN`` or ``TWITTER_BEARER_TOKEN``, read when the
        stream starts (so it is not kept in checkpoints).
    :param tweetFields: ``tweet.fields`` to ask for (a list or a comma-separated string).
    :param expansions: ``expansions`` to ask for; the expanded objects come in ``includes``.
    :param userFields: ``user.fields`` to ask for.
    :param mediaFields: ``media.fields`` to ask for.
    :param placeFields: ``place.fields`` to ask for.
    :param pollFields: ``poll.fields`` to ask for.
    :param backfillMinutes: minutes of posts to recover after a disconnection (0-5; needs an
        access level that offers it).
    :param baseUrl: the API's address (default ``https://api.x.com``).
    :param stallTimeout: seconds without data or keep-alive that count as a disconnection
        (default 20, as the platform asks).
    :param connectTimeout: seconds one connection attempt may take (default 10).
    :param networkBackoffStep: the linear backoff's step (default 0.25 s).
    :param networkBackoffMax: the linear backoff's limit (default 16 s).
    :param httpBackoffStart: the exponential backoff's first wait (default 5 s).
    :param httpBackoffMax: the exponential backoff's limit (default 320 s).
    :param rateLimitBackoffStart: the first wait after a 429 without a reset time (60 s).
    :param storageLevel: accepted for compatibility with Spark.

    >>> TwitterSource(filters=["#ember"], bearerToken="t").endpoint
    '/2/tweets/search/stream'
    """

    name = "twitter"
    delivery = Delivery.AT_MOST_ONCE

    filters: tuple[Any, ...] | None = attrs.field(default=None, converter=_filters)
    stream: str | None = attrs.field(default=None, kw_only=True, validator=_check_kind)
    bearerToken: str | None = attrs.field(default=None, kw_only=True, repr=False,
                                          validator=_check_token)
    tweetFields: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_fields)
    expansions: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_fields)
    userFields: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_fields)
    mediaFields: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_fields)
    placeFields: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_fields)
    pollFields: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_fields)
    backfillMinutes: int = attrs.field(default=0, kw_only=True, validator=_check_backfill)
    baseUrl: str = attrs.field(default=DEFAULT_BASE_URL, kw_only=True, validator=_check_url)
    stallTimeout: float = attrs.field(default=20.0, kw_only=True,
                                      validator=_check_seconds(True))
    connectTimeout: float = attrs.field(default=10.0, kw_only=True,
                                        validator=_check_seconds(True))
    networkBackoffStep: float = attrs.field(default=0.25, kw_only=True,
                                            validator=_check_seconds(False))
    networkBackoffMax: float = attrs.field(default=16.0, kw_only=True,
                                           validator=_check_seconds(False))
    httpBackoffStart: float = attrs.field(default=5.0, kw_only=True,
                                          validator=_check_seconds(False))
    httpBackoffMax: float = attrs.field(default=320.0, kw_only=True,
                                        validator=_check_seconds(False))
    rateLimitBackoffStart: float = attrs.field(default=60.0, kw_only=True,
                                               validator=_check_seconds(False))
    storageLevel: StorageLevel | None = attrs.field(default=None, kw_only=True,
                                                    validator=_check_storage_level)

    def __attrs_post_init__(self) -> None:
        if self.stream == "sample" and self.filters:
            raise ValueError("filters apply to the filtered stream: drop stream='sample'")
        resolve_token(self.bearerToken)  # fail now, not in the receiver, when there is none

    # ------------------------------------------------------------------ derived settings
    @property
    def filtered(self) -> bool:
        """Whether this is the filtered stream (else the sampled one)."""
        return self.stream == "filtered" or (self.stream is None and bool(self.filters))

    @property
    def endpoint(self) -> str:
        """The stream's path."""
        return FILTER_PATH if self.filtered else SAMPLE_PATH

    def rules(self) -> list[dict[str, str]]:
        """The filters as rule objects to add: ``[{"value": ..., "tag"?: ...}]``."""
        return [{"value": f} if isinstance(f, str) else dict(f) for f in self.filters or ()]

    def params(self) -> dict[str, str]:
        """The stream's query parameters (fields, expansions, backfill)."""
        names = {"tweetFields": "tweet.fields", "expansions": "expansions",
                 "userFields": "user.fields", "mediaFields": "media.fields",
                 "placeFields": "place.fields", "pollFields": "poll.fields"}
        params = {names[o]: ",".join(getattr(self, o)) for o in _FIELD_OPTIONS
                  if getattr(self, o)}
        if self.backfillMinutes:
            params["backfill_minutes"] = str(self.backfillMinutes)
        return params

    def network_delay(self, failures: int) -> float:
        """The wait after ``failures`` network errors in a row: linear.

        >>> [TwitterSource(bearerToken="t").network_delay(n) for n in (1, 2, 64, 100)]
        [0.25, 0.5, 16.0, 16.0]
        """
        return min(self.networkBackoffStep * max(failures, 1), self.networkBackoffMax)

    def http_delay(self, failures: int) -> float:
        """The wait after ``failures`` HTTP errors in a row: exponential.

        >>> [TwitterSource(bearerToken="t").http_delay(n) for n in (1, 2, 7, 9)]
        [5.0, 10.0, 320.0, 320.0]
        """
        return min(self.httpBackoffStart * 2.0 ** (max(failures, 1) - 1), self.httpBackoffMax)

    def rate_limit_delay(self, failures: int, reset_at: float | None, now: float) -> float:
        """The wait after a 429: until ``reset_at`` (epoch seconds) when the answer gave it,
        else exponential from ``rateLimitBackoffStart``."""
        if reset_at is not None:
            return max(reset_at - now, 0.0)
        return self.rateLimitBackoffStart * 2.0 ** (max(failures, 1) - 1)

    def createReceiver(self) -> Receiver:
        """A new :class:`~ember_twitter.TwitterReceiver` for one stream."""
        from ember_twitter._receiver import TwitterReceiver

        return TwitterReceiver(self)
