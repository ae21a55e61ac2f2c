"""``TwitterUtils``: Spark's entry point to Twitter streams, for the X API v2."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ember.storagelevel import StorageLevel

from ember_twitter._api import DEFAULT_BASE_URL, Rule, add_rules, delete_rules, list_rules
from ember_twitter._source import TwitterSource

if TYPE_CHECKING:
    from ember.streaming.context import StreamingContext
    from ember.streaming.dstream import DStream

__all__ = ["TwitterUtils"]


class TwitterUtils:
    """Make DStreams of posts from the X API v2, and manage the filtered stream's rules.

    Spark's ``TwitterUtils.createStream(ssc, auth, filters)`` read the v1.1 streaming API
    (with Twitter4J), which is gone; this one reads the v2 filtered or sampled stream with an
    app's bearer token.
    """

    @staticmethod
    def createStream(ssc: StreamingContext, filters: Iterable[str | Mapping[str, str]] | None = None,
                     storageLevel: StorageLevel = StorageLevel.MEMORY_AND_DISK_SER_2,
                     **options: Any) -> DStream:
        """A stream of post dicts.

        :param ssc: the streaming context.
        :param filters: rule values for the filtered stream (added to the app's rules when
            missing), e.g. ``["#python", "ember lang:en"]``; ``None`` for the sampled stream.
        :param storageLevel: accepted for compatibility; blocks are kept serialized.
        :param options: further :class:`~ember_twitter.TwitterSource` options:
            ``bearerToken``, ``tweetFields``, ``expansions``, ``baseUrl``, ``stallTimeout``…
        :returns: a DStream of dicts (``id``, ``text``, the fields asked for, ``includes``,
            ``matching_rules``).
        """
        source = TwitterSource(filters, storageLevel=storageLevel, **options)
        return source.createStream(ssc)

    @staticmethod
    def listRules(bearerToken: str | None = None, baseUrl: str = DEFAULT_BASE_URL) -> list[Rule]:
        """The app's filtered-stream rules: ``[{"id", "value", "tag"?}, ...]``.

        :raises ember_twitter.XApiError: the API refused.
        """
        return list_rules(bearerToken=bearerToken, baseUrl=baseUrl)

    @staticmethod
    def addRules(rules: Iterable[str | Mapping[str, str]], bearerToken: str | None = None,
                 baseUrl: str = DEFAULT_BASE_URL, dryRun: bool = False) -> list[Rule]:
        """Add filtered-stream rules (values, or ``{"value", "tag"}`` dicts); returns them
        with their ids. ``dryRun`` only checks them.

        :raises ember_twitter.XApiError: the API refused the request or a rule.
        """
        return add_rules(rules, bearerToken=bearerToken, baseUrl=baseUrl, dryRun=dryRun)

    @staticmethod
    def deleteRules(ids: Iterable[str], bearerToken: str | None = None,
                    baseUrl: str = DEFAULT_BASE_URL) -> int:
        """Delete filtered-stream rules by id; returns how many were deleted.

        :raises ember_twitter.XApiError: the API refused.
        """
        return delete_rules(ids, bearerToken=bearerToken, baseUrl=baseUrl)
