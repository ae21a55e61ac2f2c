"""The X API v2 endpoints this plugin uses: the bearer token, the stream URLs and the rules of
the filtered stream (list, add, delete)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "TOKEN_VARIABLES",
    "Rule",
    "XApiError",
    "add_rules",
    "delete_rules",
    "list_rules",
    "resolve_token",
]

#: Where the X API lives.
DEFAULT_BASE_URL = "https://api.x.com"
#: Environment variables read for the bearer token, in this order.
TOKEN_VARIABLES = ("X_BEARER_TOKEN", "TWITTER_BEARER_TOKEN")
SAMPLE_PATH = "/2/tweets/sample/stream"
FILTER_PATH = "/2/tweets/search/stream"
RULES_PATH = "/2/tweets/search/stream/rules"

#: A filtered-stream rule as the API describes it: ``{"id", "value", "tag"?}``.
Rule = dict[str, Any]


class XApiError(RuntimeError):
    """The X API answered with an error.

    :ivar status: the HTTP status (0 when the answer was a 200 with errors in its body).
    :ivar errors: the ``errors`` objects of the answer, if any.
    """

    def __init__(self, message: str, status: int = 0,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []


def resolve_token(token: str | None) -> str:
    """``token``, or the first of :data:`TOKEN_VARIABLES` that is set.

    :raises ValueError: none is given.
    """
    if token:
        return token
    for name in TOKEN_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    raise ValueError(
        "the X API needs a bearer token: pass bearerToken=..., or set the environment "
        "variable X_BEARER_TOKEN (or TWITTER_BEARER_TOKEN); get one from your app in the X "
        "developer portal"
    )


def headers(token: str) -> dict[str, str]:
    """The request headers: the bearer token and a user agent."""
    return {"Authorization": f"Bearer {token}", "User-Agent": "ember-twitter/0.1"}


def describe_error(response: httpx.Response, body: bytes) -> str:
    """A one-line description of an error answer: status, title and detail."""
    text = body[:500].decode("utf-8", "replace").strip()
    try:
        import json

        data = json.loads(body)
        parts = [str(data.get(k)) for k in ("title", "detail") if data.get(k)]
        if not parts and isinstance(data.get("errors"), list):
            parts = [str(e.get("message") or e.get("title") or e) for e in data["errors"][:3]]
        if parts:
            text = ": ".join(parts)
    except (ValueError, AttributeError):
        pass
    return f"HTTP {response.status_code} {response.reason_phrase}" + (f" ({text})" if text else "")


def _client(base_url: str, token: str, timeout: float) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=headers(resolve_token(token)),
                        timeout=timeout)


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise XApiError(describe_error(response, response.content), response.status_code)
    data = response.json()
    if not isinstance(data, dict):
        raise XApiError(f"unexpected answer from the X API: {data!r:.200}")
    return data


def list_rules(*, bearerToken: str | None = None, baseUrl: str = DEFAULT_BASE_URL,
               timeout: float = 30.0) -> list[Rule]:
    """The rules of the filtered stream (``GET /2/tweets/search/stream/rules``).

    :raises XApiError: the API refused.
    """
    with _client(baseUrl, bearerToken, timeout) as client:
        data = _check(client.get(RULES_PATH))
    return list(data.get("data") or [])


def add_rules(rules: Iterable[str | Mapping[str, str]], *, bearerToken: str | None = None,
              baseUrl: str = DEFAULT_BASE_URL, dryRun: bool = False,
              timeout: float = 30.0) -> list[Rule]:
    """Add rules to the filtered stream (``POST .../rules`` with ``add``).

    :param rules: rule values (``"#python lang:en"``), or ``{"value": ..., "tag": ...}``.
    :param dryRun: only check the rules (``dry_run=true``); nothing is added.
    :returns: the rules created, with their ids.
    :raises XApiError: the API refused the request or one of the rules (the message says
        which and why).
    """
    add = [{"value": r} if isinstance(r, str) else dict(r) for r in rules]
    if not add:
        return []
    with _client(baseUrl, bearerToken, timeout) as client:
        data = _check(client.post(RULES_PATH, json={"add": add},
                                  params={"dry_run": "true"} if dryRun else None))
    errors = data.get("errors") or []
    if errors:
        detail = "; ".join(f"{e.get('value', '')!r}: {e.get('title') or e.get('message')}"
                           for e in errors[:5])
        raise XApiError(f"the X API refused rules: {detail}", 0, errors)
    return list(data.get("data") or [])


def delete_rules(ids: Iterable[str], *, bearerToken: str | None = None,
                 baseUrl: str = DEFAULT_BASE_URL, timeout: float = 30.0) -> int:
    """Delete rules of the filtered stream by id (``POST .../rules`` with ``delete``).

    :returns: how many were deleted.
    :raises XApiError: the API refused.
    """
    wanted = [str(i) for i in ids]
    if not wanted:
        return 0
    with _client(baseUrl, bearerToken, timeout) as client:
        data = _check(client.post(RULES_PATH, json={"delete": {"ids": wanted}}))
    return int((data.get("meta") or {}).get("summary", {}).get("deleted", len(wanted)))
