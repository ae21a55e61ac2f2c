"""The web server: a Starlette application served by uvicorn in a thread of its own.

Threads and isolation
---------------------
:meth:`UIServer.start` binds the listening socket in the caller's thread (so the port is
known, and a port already taken is detected, before it returns: microseconds) and starts one
daemon thread, ``ember-ui-server``, which imports Starlette and uvicorn, builds the
application and runs uvicorn on an event loop of its own. The engine never waits for that
thread: requests that arrive before it is ready wait in the socket's backlog.

Every handler is ``async`` and runs on that loop; none uses a worker thread (the assets
are served from memory), so the only thread the UI ever adds is ``ember-ui-server``. The
handlers read :class:`~ember_ui._store.Snapshot` objects, never the engine's live state.

Stopping
--------
:meth:`UIServer.stop` wakes the loop (``call_soon_threadsafe``), which ends the server-sent
event streams at once, lets uvicorn close the connections, and joins the thread. It is
idempotent and safe to call before the thread got going.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

from ember_ui import _api, _pages
from ember_ui._store import Snapshot, StreamingStore

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["PORT_RETRIES", "UIServer"]

log = logging.getLogger("ember.ui")

#: How many ports after the configured one are tried when it is taken (Spark's default
#: ``spark.port.maxRetries``).
PORT_RETRIES = 16

#: Seconds between two checks for news by a server-sent event stream.
EVENT_INTERVAL = 0.5

#: Seconds between two keep-alive comments on an idle event stream.
KEEPALIVE = 15.0

#: Seconds open connections get to finish when the server stops.
SHUTDOWN_GRACE = 2.0


class _QuietServerThread(logging.Filter):
    """Drops uvicorn's informational lines from the UI's thread ("Started server process"
    is misleading there: no process is started); its warnings and errors still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.threadName != "ember-ui-server"


_QUIET = _QuietServerThread()


def bind_socket(host: str, port: int, retries: int = PORT_RETRIES) -> socket.socket:
    """A listening TCP socket on ``host`` at ``port``, or the next free port after it.

    :param host: an address or name; ``127.0.0.1`` by default in the UI.
    :param port: the first port to try; 0 picks any free port.
    :param retries: how many following ports to try when ``port`` is taken.
    :raises OSError: no port in the range could be bound (the last error).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    last: OSError | None = None
    for attempt in range(retries + 1 if port else 1):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address[0], port + attempt, *address[2:]))
            sock.listen(128)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
            log.info("ember UI: port %d is taken, trying %d", port + attempt, port + attempt + 1)
    assert last is not None
    raise last


class UIServer:
    """The UI's web server over one :class:`~ember_ui._store.StreamingStore`.

    :param store: what the pages, the API and ``/metrics`` show.
    :param host: the address to listen on.
    :param port: the first port to try (the next free one is taken, see :func:`bind_socket`).
    :param version: the ember version shown in the API.
    """

    def __init__(self, store: StreamingStore, host: str = "127.0.0.1", port: int = 4040,
                 version: str = "") -> None:
        self.store = store
        self.host = host
        self.requested_port = port
        self.version = version
        self.port: int | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._cache: tuple[int, Snapshot] | None = None
        self._stats_cache: tuple[int, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:4040``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> str:
        """Bind the port and start serving in the ``ember-ui-server`` thread.

        :returns: the base URL.
        :raises OSError: no port could be bound.
        """
        sock = bind_socket(self.host, self.requested_port)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="ember-ui-server", daemon=True)
        self._thread.start()
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close every connection and join the server thread."""
        with self._lock:
            if self._stopping:
                loop = None
            else:
                self._stopping = True
                loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop already ended
                pass
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("ember UI: the server thread did not stop within %.0f s", timeout)

    def _wake(self) -> None:
        if self._closing is not None:
            self._closing.set()

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        loop = asyncio.new_event_loop()
        try:
            import uvicorn

            uvicorn_log = logging.getLogger("uvicorn.error")
            if _QUIET not in uvicorn_log.filters:
                uvicorn_log.addFilter(_QUIET)

            app = self.build_app()
            config = uvicorn.Config(
                app, loop="none", http="h11", ws="none", lifespan="off", log_config=None,
                log_level=None, access_log=False, server_header=False, date_header=False,
                timeout_graceful_shutdown=SHUTDOWN_GRACE,
            )
            closing = _EventHolder()

            class _Server(uvicorn.Server):
                async def main_loop(self) -> None:
                    await self.on_tick(0)
                    await closing.event.wait()

                async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
                    await _quick_shutdown(self, sockets, super().shutdown)

            server = _Server(config)
            asyncio.set_event_loop(loop)

            async def serve() -> None:
                closing.event = asyncio.Event()
                with self._lock:
                    self._closing = closing.event
                    self._loop = loop
                    if self._stopping:
                        closing.event.set()
                await server.serve(sockets=[sock])

            loop.run_until_complete(serve())
        except BaseException:
            log.exception("ember UI: the web server failed; the UI is off")
        finally:
            with self._lock:
                self._loop = None
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                sock.close()

    # ------------------------------------------------------------------ reading the store
    def snapshot(self) -> Snapshot:
        """The store's snapshot, taken again only when the store changed."""
        cached = self._cache
        if cached is not None and cached[0] == self.store.version:
            return cached[1]
        snap = self.store.snapshot()
        self._cache = (snap.version, snap)
        return snap

    def statistics(self, snap: Snapshot) -> dict[str, Any]:
        """:func:`ember_ui._api.statistics_json` of ``snap``, computed once per version."""
        cached = self._stats_cache
        if cached is not None and cached[0] == snap.version:
            return cached[1]
        stats = _api.statistics_json(snap)
        self._stats_cache = (snap.version, stats)
        return stats

    def update(self, snap: Snapshot, since: int | None) -> dict[str, Any]:
        """The page's live update: everything that changed since ``since`` completed batches.

        :param since: the ``total`` of the previous update on this stream, ``None`` first.
        """
        new = snap.total_completed - since if since is not None else len(snap.completed)
        new = max(0, min(new, len(snap.completed)))
        fresh = snap.completed[len(snap.completed) - new:] if new else ()
        clock = self.store.clock
        receivers = _api.receivers_json(snap)
        for r in receivers:
            r.pop("eventRates", None)
        return {
            "app": {"id": snap.app_id, "name": snap.app_name, "master": snap.master,
                    "version": self.version},
            "now": clock.now_ms() if clock is not None and snap.stop_time is None
            else snap.now,
            "startTime": snap.start_time,
            "stopTime": snap.stop_time,
            "batchDuration": snap.batch_duration,
            "retained": self.store.retained,
            "total": snap.total_completed,
            "reset": since is None,
            "statistics": self.statistics(snap),
            "completed": [_api.batch_json(snap, "COMPLETED", b) for b in fresh],
            "active": sorted(
                (_api.batch_json(snap, "PROCESSING", b) for b in snap.running.values()),
                key=lambda b: b["batchId"],
            ) + sorted(
                (_api.batch_json(snap, "QUEUED", b) for b in snap.waiting.values()),
                key=lambda b: b["batchId"],
            ),
            "receivers": receivers,
        }

    # ------------------------------------------------------------------ the application
    def build_app(self) -> Starlette:
        """The Starlette application: pages, assets, events, API and metrics."""
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse, RedirectResponse, Response
        from starlette.routing import Route

        from ember_ui import _metrics

        registry = _metrics.make_registry(self.snapshot)
        api = "/api/v1/applications/{app_id}/streaming"

        def json_response(doc: Any, status: int = 200) -> Response:
            body = json.dumps(doc, indent=2, allow_nan=False).encode()
            return Response(body, status, media_type="application/json")

        def not_found(message: str) -> Response:
            return PlainTextResponse(message, 404)

        def check_app(request: Request, snap: Snapshot) -> Response | None:
            app_id = request.path_params["app_id"]
            return None if app_id == snap.app_id else not_found(f"unknown app: {app_id}")

        def find(request: Request, snap: Snapshot) -> tuple[str, Any] | Response:
            missing = check_app(request, snap)
            if missing is not None:
                return missing
            batch_id = request.path_params["batch_id"]
            found = snap.find_batch(batch_id)
            if found is None:
                return not_found(f"Couldn't find batch with batch id: {batch_id}")
            return found

        async def root(request: Request) -> Response:
            return RedirectResponse("/streaming/", 302)

        async def statistics_page(request: Request) -> Response:
            return _pages.page("statistics", self.snapshot(), self.version)

        async def batch_page(request: Request) -> Response:
            return _pages.page("batch", self.snapshot(), self.version)

        async def asset(request: Request) -> Response:
            found = _pages.asset(request.path_params["name"])
            if found is None:
                return not_found("no such asset")
            body, media_type = found
            return Response(body, media_type=media_type,
                            headers={"Cache-Control": "no-cache"})

        async def events(request: Request) -> Response:
            return self._event_stream(request)

        async def applications(request: Request) -> Response:
            return json_response([_api.application(self.snapshot(), self.version)])

        async def one_application(request: Request) -> Response:
            snap = self.snapshot()
            return check_app(request, snap) or json_response(_api.application(snap,
                                                                              self.version))

        async def statistics(request: Request) -> Response:
            snap = self.snapshot()
            return check_app(request, snap) or json_response(self.statistics(snap))

        async def receivers(request: Request) -> Response:
            snap = self.snapshot()
            return check_app(request, snap) or json_response(_api.receivers_json(snap))

        async def receiver(request: Request) -> Response:
            snap = self.snapshot()
            missing = check_app(request, snap)
            if missing is not None:
                return missing
            stream_id = request.path_params["stream_id"]
            doc = _api.receiver_json(snap, stream_id)
            if doc is None:
                return not_found(f"no receiver with streamId {stream_id}")
            return json_response(doc)

        async def batches(request: Request) -> Response:
            snap = self.snapshot()
            missing = check_app(request, snap)
            if missing is not None:
                return missing
            statuses = [s.upper() for s in request.query_params.getlist("status")]
            bad = [s for s in statuses if s not in _api.BATCH_STATUSES]
            if bad:
                return PlainTextResponse(
                    f"unknown batch status {bad[0]!r}; use one of "
                    f"{', '.join(_api.BATCH_STATUSES)}", 400)
            return json_response(_api.batches_json(snap, statuses))

        async def batch(request: Request) -> Response:
            snap = self.snapshot()
            found = find(request, snap)
            if not isinstance(found, tuple):
                return found
            return json_response(_api.batch_detail_json(snap, *found))

        async def operations(request: Request) -> Response:
            snap = self.snapshot()
            found = find(request, snap)
            if not isinstance(found, tuple):
                return found
            return json_response(_api.operations_json(snap, *found))

        async def operation(request: Request) -> Response:
            snap = self.snapshot()
            found = find(request, snap)
            if not isinstance(found, tuple):
                return found
            op_id = request.path_params["op_id"]
            for op in _api.operations_json(snap, *found):
                if op["outputOpId"] == op_id:
                    return json_response(op)
            return not_found(f"Unknown output operation id: {op_id}")

        async def metrics(request: Request) -> Response:
            return Response(_metrics.render(registry), media_type=_metrics.CONTENT_TYPE)

        routes = [
            Route("/", root),
            Route("/streaming/", statistics_page),
            Route("/streaming/batch/", batch_page),
            Route("/streaming/events", events),
            Route("/static/{name}", asset),
            Route("/metrics", metrics),
            Route("/api/v1/applications", applications),
            Route("/api/v1/applications/{app_id}", one_application),
            Route(api + "/statistics", statistics),
            Route(api + "/receivers", receivers),
            Route(api + "/receivers/{stream_id:int}", receiver),
            Route(api + "/batches", batches),
            Route(api + "/batches/{batch_id:int}", batch),
            Route(api + "/batches/{batch_id:int}/operations", operations),
            Route(api + "/batches/{batch_id:int}/operations/{op_id:int}", operation),
        ]
        return Starlette(routes=routes)

    def _event_stream(self, request: Request) -> Response:
        """``/streaming/events``: server-sent ``update`` events while the store changes."""
        from starlette.responses import StreamingResponse

        closing = self._closing

        async def stream() -> Any:
            since: int | None = None
            seen = -1
            loop = asyncio.get_running_loop()
            quiet_since = loop.time()
            yield "retry: 2000\n\n"
            while True:
                if self.store.version != seen:
                    snap = self.snapshot()
                    doc = self.update(snap, since)
                    since, seen = snap.total_completed, snap.version
                    quiet_since = loop.time()
                    yield f"event: update\ndata: {json.dumps(doc, allow_nan=False)}\n\n"
                elif loop.time() - quiet_since > KEEPALIVE:
                    quiet_since = loop.time()
                    yield ": keep-alive\n\n"
                if closing is None or closing.is_set() or await request.is_disconnected():
                    break
                try:
                    await asyncio.wait_for(closing.wait(), EVENT_INTERVAL)
                except asyncio.TimeoutError:
                    pass
            if closing is not None and closing.is_set():
                yield "event: end\ndata: {}\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


async def _quick_shutdown(server: Any, sockets: list[socket.socket] | None,
                          fallback: Any) -> None:
    """uvicorn's shutdown without its fixed 0.1 s pause: close the listener, ask every
    connection to finish (the event streams already ended), wait for them at most
    :data:`SHUTDOWN_GRACE` seconds, then close what is left. Stopping a streaming context
    therefore takes milliseconds, not a tenth of a second. Falls back to uvicorn's own
    shutdown if its internals ever change shape."""
    try:
        listeners = list(server.servers)
        state = server.server_state
        connections, tasks = state.connections, state.tasks
    except AttributeError:  # pragma: no cover - another uvicorn layout
        await fallback(sockets)
        return
    for listener in listeners:
        listener.close()
    for sock in sockets or []:
        sock.close()
    for connection in list(connections):
        connection.shutdown()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SHUTDOWN_GRACE
    while (connections or tasks) and loop.time() < deadline:
        await asyncio.sleep(0.002)
    for connection in list(connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.close()
    for task in list(tasks):
        task.cancel()
    for listener in listeners:
        try:
            await asyncio.wait_for(listener.wait_closed(), SHUTDOWN_GRACE)
        except asyncio.TimeoutError:
            log.warning("ember UI: a connection did not close within %.0f s", SHUTDOWN_GRACE)


class _EventHolder:
    """Holds the loop's closing event once the loop runs."""

    event: asyncio.Event
