"""A local server speaking the X API v2 streaming protocol, for tests and demos.

:class:`XStreamServer` listens on ``127.0.0.1`` (a free port) and serves

- ``GET /2/tweets/sample/stream`` and ``GET /2/tweets/search/stream``: a chunked stream of
  newline-delimited JSON — ``{"data": post, ...}`` lines, and an empty line (``\\r\\n``)
  as keep-alive every ``keepalive`` seconds; the filtered stream sends only the posts that
  match a rule (a simple approximation: every plain term of the rule's value occurs in the
  text), with their ``matching_rules``;
- ``GET`` and ``POST /2/tweets/search/stream/rules``: list, add (``dry_run`` too; duplicate
  and empty values are refused with errors, as the API does) and delete rules.

Requests need ``Authorization: Bearer <token>`` (401 otherwise). Tests steer it: :meth:`send`
queues posts (kept while no stream is connected), :meth:`send_line` raw lines (malformed
ones), :meth:`send_error` an in-stream error object, :meth:`fail` ends the current connection,
:meth:`stall` makes it go silent (no keep-alive either), and :meth:`respond` scripts the next
answers (a 429 with ``x-rate-limit-reset``, a 503...). Every request is recorded in
:attr:`requests`.
"""

from __future__ import annotations

import collections
import itertools
import json
import select
import socket
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["XStreamServer"]

_STREAMS = {"/2/tweets/sample/stream": "sample", "/2/tweets/search/stream": "filtered"}
_RULES = "/2/tweets/search/stream/rules"


def _client_gone(h: BaseHTTPRequestHandler) -> bool:
    """Whether the client closed its end (it never sends on a stream: readable means gone)."""
    sock = h.connection
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _matches(value: str, text: str) -> bool:
    terms = [t for t in value.lower().split() if ":" not in t and t not in ("or", "and")]
    low = text.lower()
    return bool(terms) and all(t.strip('"()') in low for t in terms)


class XStreamServer:
    """The server (see the module documentation).

    :param token: the bearer token it accepts.
    :param keepalive: seconds between keep-alive newlines on a quiet stream.
    """

    __test__ = False

    def __init__(self, token: str = "test-token", keepalive: float = 0.1) -> None:
        self.token = token
        self.keepalive = keepalive
        self._cond = threading.Condition()
        self._lines: collections.deque[tuple[str, bytes, dict[str, Any] | None]] = (
            collections.deque())
        self._scripted: collections.deque[tuple[int, dict[str, str], bytes]] = (
            collections.deque())
        self._generation = 0  # bumped by fail(): the connections of older ones end
        self._stalled_connection = 0
        self._current = 0  # the newest stream connection
        self._closed = False
        self._ids = itertools.count(1)
        #: The filtered stream's rules, by id.
        self.rules: dict[str, dict[str, str]] = {}
        #: Every request: ``(method, path, query parameters, headers)``.
        self.requests: list[tuple[str, str, dict[str, list[str]], dict[str, str]]] = []
        #: How many stream connections were accepted (answered 200).
        self.connections = 0
        #: How many keep-alive newlines were sent.
        self.keepalives = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"x-stream-server-{self.port}")
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL to give as ``baseUrl``: ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ steering
    def send(self, posts: Iterable[dict[str, Any]], **extra: Any) -> None:
        """Queue posts (``{"id": ..., "text": ...}``); each goes out as ``{"data": post,
        **extra}`` on the stream connected now, or the next one."""
        with self._cond:
            for post in posts:
                self._lines.append(("post", b"", {"data": post, **extra}))
            self._cond.notify_all()

    def send_line(self, line: bytes) -> None:
        """Queue a raw line (without its line break), e.g. malformed JSON."""
        with self._cond:
            self._lines.append(("raw", line, None))
            self._cond.notify_all()

    def send_error(self, title: str, detail: str = "") -> None:
        """Queue an in-stream error object; the connection ends after it, as the platform's
        does (what is queued after it goes to the next connection)."""
        with self._cond:
            self._lines.append(("error", json.dumps(
                {"errors": [{"title": title, "detail": detail,
                             "type": "https://api.twitter.com/2/problems/" + title}]}
            ).encode(), None))
            self._cond.notify_all()

    def respond(self, status: int, headers: dict[str, str] | None = None,
                body: dict[str, Any] | None = None, times: int = 1) -> None:
        """Answer the next ``times`` stream requests with ``status`` (and headers, JSON body)
        instead of a stream."""
        data = json.dumps(body if body is not None else {
            "title": "Too Many Requests" if status == 429 else "Service Unavailable",
            "detail": f"status {status}", "status": status}).encode()
        with self._cond:
            for _ in range(times):
                self._scripted.append((status, dict(headers or {}), data))

    def fail(self) -> None:
        """End the stream connected now (the client sees the stream end)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def stall(self) -> None:
        """Make the stream connected now go silent: no posts, no keep-alive."""
        with self._cond:
            self._stalled_connection = self._current
            self._cond.notify_all()

    def wait_connections(self, n: int, timeout: float = 20.0) -> None:
        """Wait until ``n`` stream connections were accepted in all."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self.connections >= n, timeout)
        if not ok:
            raise TimeoutError(f"{self.connections} stream connections within {timeout} s, "
                               f"expected {n}")

    def wait_keepalives(self, n: int, timeout: float = 20.0) -> None:
        """Wait until ``n`` keep-alive newlines were sent in all."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self.keepalives >= n, timeout)
        if not ok:
            raise TimeoutError(f"{self.keepalives} keep-alives within {timeout} s, expected {n}")

    def close(self) -> None:
        """Stop serving; open streams end."""
        with self._cond:
            self._closed = True
            self._generation += 1
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> XStreamServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ serving
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        return Handler

    def _json(self, h: BaseHTTPRequestHandler, status: int, body: Any,
              headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        params = parse_qs(parts.query)
        with self._cond:
            self.requests.append((method, parts.path, params, dict(h.headers.items())))
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            self._json(h, 401, {"title": "Unauthorized", "type": "about:blank",
                                "status": 401, "detail": "Unauthorized"})
            return
        if parts.path == _RULES:
            self._rules(h, method, params)
        elif parts.path in _STREAMS and method == "GET":
            self._stream(h, _STREAMS[parts.path])
        else:
            self._json(h, 404, {"title": "Not Found Error", "status": 404,
                                "detail": f"no route {method} {parts.path}"})

    def _rules(self, h: BaseHTTPRequestHandler, method: str,
               params: dict[str, list[str]]) -> None:
        sent = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        if method == "GET":
            with self._cond:
                data = list(self.rules.values())
            body: dict[str, Any] = {"meta": {"sent": sent, "result_count": len(data)}}
            if data:
                body["data"] = data
            self._json(h, 200, body)
            return
        length = int(h.headers.get("Content-Length") or 0)
        try:
            request = json.loads(h.rfile.read(length) or b"null")
        except ValueError:
            self._json(h, 400, {"title": "Invalid Request", "status": 400,
                                "detail": "the body is not JSON"})
            return
        dry_run = params.get("dry_run", ["false"])[0] == "true"
        if isinstance(request, dict) and "add" in request:
            created, errors = [], []
            with self._cond:
                values = {r["value"] for r in self.rules.values()}
                for rule in request["add"]:
                    value = str(rule.get("value", ""))
                    if not value.strip() or len(value) > 512:
                        errors.append({"value": value, "title": "UnprocessableEntity",
                                       "details": ["the rule is empty or too long"]})
                    elif value in values:
                        errors.append({"value": value, "title": "DuplicateRule",
                                       "id": next(r["id"] for r in self.rules.values()
                                                  if r["value"] == value)})
                    else:
                        made = {"id": str(next(self._ids) + 1_000_000), "value": value}
                        if rule.get("tag"):
                            made["tag"] = str(rule["tag"])
                        created.append(made)
                        values.add(value)
                if not dry_run:
                    for made in created:
                        self.rules[made["id"]] = made
            body = {"meta": {"sent": sent, "summary": {
                "created": len(created), "not_created": len(errors),
                "valid": len(created), "invalid": len(errors)}}}
            if created:
                body["data"] = created
            if errors:
                body["errors"] = errors
            self._json(h, 200, body)
        elif isinstance(request, dict) and "delete" in request:
            ids = [str(i) for i in (request["delete"] or {}).get("ids", [])]
            with self._cond:
                deleted = [i for i in ids if self.rules.pop(i, None) is not None]
            self._json(h, 200, {"meta": {"sent": sent, "summary": {
                "deleted": len(deleted), "not_deleted": len(ids) - len(deleted)}}})
        else:
            self._json(h, 400, {"title": "Invalid Request", "status": 400,
                                "detail": "expected 'add' or 'delete'"})

    def _stream(self, h: BaseHTTPRequestHandler, kind: str) -> None:
        with self._cond:
            scripted = self._scripted.popleft() if self._scripted else None
        if scripted is not None:
            status, headers, body = scripted
            self._json(h, status, body, headers)
            return
        h.send_response(200)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        with self._cond:
            self.connections += 1
            self._current += 1
            me = self._current  # a newer connection replaces this one
            generation = self._generation
            self._cond.notify_all()
        h.close_connection = True

        def ended() -> bool:
            return self._closed or self._generation != generation or self._current != me

        while True:
            with self._cond:
                self._cond.wait_for(lambda: ended() or (
                    self._lines and self._stalled_connection != me), self.keepalive)
                if ended():
                    break
                if self._stalled_connection == me:
                    continue
                batch = list(self._lines)
                self._lines.clear()
                rules = list(self.rules.values())
            # an error object ends the connection: what follows it waits for the next one
            cut = next((i + 1 for i, item in enumerate(batch) if item[0] == "error"), None)
            later = batch[cut:] if cut is not None else []
            batch = batch[:cut] if cut is not None else batch
            payload = b"".join(self._encode(item, kind, rules) for item in batch)
            if _client_gone(h) or not self._write(h, payload or b"\r\n"):
                # the client went away: what it never read waits for the next connection
                with self._cond:
                    self._lines.extendleft(reversed(batch + later))
                    self._cond.notify_all()
                return
            if not payload:
                with self._cond:
                    self.keepalives += 1
                    self._cond.notify_all()
            if later or cut is not None:
                with self._cond:
                    self._lines.extendleft(reversed(later))
                    self._cond.notify_all()
                break
        self._write(h, b"")  # the last chunk: the stream ends cleanly

    @staticmethod
    def _write(h: BaseHTTPRequestHandler, data: bytes) -> bool:
        """Write one chunk (an empty one ends the stream); whether it went out."""
        try:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            h.wfile.flush()
            return True
        except OSError:
            return False

    @staticmethod
    def _encode(item: tuple[str, bytes, dict[str, Any] | None], kind: str,
                rules: list[dict[str, str]]) -> bytes:
        what, raw, message = item
        if what in ("raw", "error"):
            return raw + b"\r\n"
        assert message is not None
        if kind == "filtered":
            text = str(message.get("data", {}).get("text", ""))
            matching = [{"id": r["id"], "tag": r.get("tag", "")} for r in rules
                        if _matches(r["value"], text)]
            if not matching:
                return b""
            message = {**message, "matching_rules": matching}
        return json.dumps(message).encode() + b"\r\n"
