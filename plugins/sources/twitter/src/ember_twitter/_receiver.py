"""The Twitter receiver: one thread per start reads the stream's newline-delimited JSON.

The thread makes sure the filtered stream's rules exist (adding the source's filters the app
does not have yet), opens the stream with httpx, and reads it line by line. An empty line is
the keep-alive the platform sends every few seconds; a line holding a post becomes one
record (its ``data``, with ``includes`` and ``matching_rules``); a line holding only
``errors`` (the platform announcing a disconnection) ends the connection; a line that is not
JSON is reported to listeners and skipped — the stream goes on.

httpx's read timeout is the source's ``stallTimeout``: a stream silent for that long (no post,
no keep-alive) raises, and counts as a network error. Failures end the start with
``restart(...)`` after the delay the platform asks for: linear for network errors (and
stalls, and a stream the server ended), exponential for HTTP errors, the
``x-rate-limit-reset`` time for HTTP 429. The counters reset once a connection is accepted.

``onStop`` shuts the stream's socket down — waking a read blocked on a silent stream at once —
then joins the thread, which closes the response and the client.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
from ember.receivers import Receiver
from ember.storagelevel import StorageLevel

from ember_twitter._api import (
    XApiError,
    add_rules,
    describe_error,
    headers,
    list_rules,
    resolve_token,
)

if TYPE_CHECKING:
    from ember_twitter._source import TwitterSource

__all__ = ["TwitterReceiver"]


class _NetworkFailure(Exception):
    """A connection that could not be made, broke, stalled or ended."""


class _HTTPFailure(Exception):
    """An HTTP error answer (``status``); ``reset_at`` for a 429 that gave one."""

    def __init__(self, message: str, status: int, reset_at: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reset_at = reset_at


class _Session:
    """The runtime state of one start of a receiver."""

    def __init__(self, receiver: TwitterReceiver) -> None:
        self.receiver = receiver
        self.source = receiver.source
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        try:
            self._read()
        except _NetworkFailure as failure:
            if not self.halt.is_set():
                self.receiver._network_failure(str(failure), failure.__cause__)
        except _HTTPFailure as failure:
            if not self.halt.is_set():
                self.receiver._http_failure(failure)
        except Exception as exc:
            if not self.halt.is_set():
                self.receiver._network_failure(
                    f"reading the stream failed: {type(exc).__name__}: {exc}", exc)

    # ------------------------------------------------------------------ reading
    def _read(self) -> None:
        src = self.source
        token = resolve_token(src.bearerToken)
        url = src.baseUrl.rstrip("/") + src.endpoint
        if src.filtered and src.filters:
            self._ensure_rules(token)
        timeout = httpx.Timeout(connect=src.connectTimeout, read=src.stallTimeout, write=10.0,
                                pool=10.0)
        with httpx.Client(headers=headers(token), timeout=timeout) as client:
            try:
                with client.stream("GET", url, params=src.params()) as response:
                    self._read_response(response, url)
            except httpx.ReadTimeout as exc:
                if self.halt.is_set():
                    return
                raise _NetworkFailure(
                    f"the stream at {url} stalled: no data and no keep-alive for "
                    f"{src.stallTimeout:g} s") from exc
            except httpx.TransportError as exc:
                if self.halt.is_set():
                    return
                raise _NetworkFailure(f"the connection to {url} failed: "
                                      f"{type(exc).__name__}: {exc}") from exc
        if not self.halt.is_set():
            raise _NetworkFailure(f"the server ended the stream at {url}")

    def _read_response(self, response: httpx.Response, url: str) -> None:
        if response.status_code != 200:
            body = response.read()
            reset = response.headers.get("x-rate-limit-reset")
            reset_at = None
            if response.status_code == 429 and reset:
                try:
                    reset_at = float(reset)
                except ValueError:
                    reset_at = None
            raise _HTTPFailure(f"the stream at {url} answered {describe_error(response, body)}",
                               response.status_code, reset_at)
        stream = response.extensions.get("network_stream")
        with self.lock:
            self.sock = stream.get_extra_info("socket") if stream is not None else None
            halted = self.halt.is_set()
        if halted:
            return
        self.receiver._connected()
        for line in response.iter_lines():
            if self.halt.is_set():
                return
            if line.strip():
                self._line(line, url)

    def _line(self, line: str, url: str) -> None:
        try:
            message = json.loads(line)
        except ValueError as exc:
            self.receiver.reportError(
                f"skipped a malformed line of the stream at {url}: {exc}: {line[:200]!r}")
            return
        if not isinstance(message, dict):
            self.receiver.reportError(f"skipped a line of the stream at {url} that is not a "
                                      f"JSON object: {line[:200]!r}")
            return
        post = message.get("data")
        if isinstance(post, dict):
            for extra in ("includes", "matching_rules"):
                if extra in message:
                    post[extra] = message[extra]
            self.receiver.store(post)
            return
        errors = message.get("errors")
        if errors:
            first = errors[0] if isinstance(errors, list) and errors else errors
            title = first.get("title") if isinstance(first, dict) else None
            detail = first.get("detail") if isinstance(first, dict) else None
            text = ": ".join(str(p) for p in (title, detail) if p) or str(first)[:200]
            raise _NetworkFailure(f"the stream at {url} sent an error: {text}")
        self.receiver.reportError(f"skipped a line of the stream at {url} with neither data "
                                  f"nor errors: {line[:200]!r}")

    def _ensure_rules(self, token: str) -> None:
        """Add the source's filters the app's rules do not have yet."""
        src = self.source
        try:
            existing = {r.get("value") for r in list_rules(
                bearerToken=token, baseUrl=src.baseUrl, timeout=src.connectTimeout)}
            missing = [r for r in src.rules() if r["value"] not in existing]
            if missing:
                add_rules(missing, bearerToken=token, baseUrl=src.baseUrl,
                          timeout=src.connectTimeout)
        except XApiError as exc:
            raise _HTTPFailure(f"could not set the filtered stream's rules: {exc}",
                               exc.status or 400) from exc
        except httpx.TransportError as exc:
            raise _NetworkFailure(f"could not reach {src.baseUrl} to set the rules: "
                                  f"{type(exc).__name__}: {exc}") from exc

    # ------------------------------------------------------------------ stopping
    def close(self) -> None:
        """Stop reading: shut the stream's socket down (waking a blocked read), join."""
        self.halt.set()
        with self.lock:
            sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()


class TwitterReceiver(Receiver):
    """Receives the posts of an X API v2 stream (see :class:`~ember_twitter.TwitterSource`).

    :param source: the :class:`~ember_twitter.TwitterSource` configuration.
    """

    def __init__(self, source: TwitterSource) -> None:
        super().__init__(source.storageLevel or StorageLevel.MEMORY_AND_DISK_SER_2)
        self.source = source
        self._network_failures = 0
        self._http_failures = 0
        self._rate_limited = 0
        self._session: _Session | None = None

    def __getstate__(self) -> dict[str, Any]:
        """The configuration only: the running session stays."""
        state = super().__getstate__()
        state["_session"] = None
        return state

    def name(self) -> str:
        """``TwitterReceiver(filtered stream at https://api.x.com)``, for listeners."""
        kind = "filtered" if self.source.filtered else "sampled"
        return f"TwitterReceiver({kind} stream at {self.source.baseUrl})"

    def onStart(self) -> None:
        """Start the reading thread (returns at once)."""
        session = _Session(self)
        self._session = session
        session.thread = threading.Thread(target=session.run, daemon=True,
                                          name=f"ember-twitter-{self.streamId}")
        session.thread.start()

    def onStop(self) -> None:
        """Shut the connection down and join the thread."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    # ------------------------------------------------------------------ failures
    def _connected(self) -> None:
        self._network_failures = self._http_failures = self._rate_limited = 0

    def _network_failure(self, message: str, error: BaseException | None) -> None:
        if self.isStopped():
            return
        self._network_failures += 1
        delay = self.source.network_delay(self._network_failures)
        self.restart(f"{message}; reconnecting in {delay:g} s", error, delay)

    def _http_failure(self, failure: _HTTPFailure) -> None:
        if self.isStopped():
            return
        if failure.status == 429:
            self._rate_limited += 1
            delay = self.source.rate_limit_delay(self._rate_limited, failure.reset_at,
                                                 time.time())
            when = (f" (the rate limit resets at "
                    f"{time.strftime('%H:%M:%S', time.localtime(failure.reset_at))})"
                    if failure.reset_at is not None else "")
            message = f"{failure}{when}; reconnecting in {delay:.3g} s"
        else:
            self._http_failures += 1
            delay = self.source.http_delay(self._http_failures)
            message = f"{failure}; reconnecting in {delay:g} s"
        self.restart(message, None, delay)
