"""ember-ui: the monitoring web UI of ember streaming, a hook plugin (group ``ember.hooks``).

Installed, it is on: every :class:`ember.streaming.StreamingContext` that starts serves
``http://127.0.0.1:4040/streaming/`` (the next free port when 4040 is taken; the URL is
logged at INFO on the ``ember.ui`` logger) until it stops. It shows the statistics of the
guide's "Monitoring Applications" section — input rate, scheduling delay, processing time
and total delay as live timelines and histograms, the batch interval drawn on the
processing-time chart — the active and completed batches, each batch's output operations
with their errors, and the receivers. It also serves Spark's streaming JSON API under
``/api/v1`` and Prometheus metrics under ``/metrics``. See ``docs/ui.md``.

Configuration (``ember.ui.*``; the ``spark.ui.*`` spellings are aliases):

- ``ember.ui.enabled`` (``True``): serve the UI at all;
- ``ember.ui.host`` (``"127.0.0.1"``): the address to listen on;
- ``ember.ui.port`` (``4040``): the first port tried, then up to 16 more; 0 takes any;
- ``ember.ui.retainedBatches`` (``1000``): completed batches kept for the pages and the API.

How it stays out of the way: the hooks below only append the event objects they receive to
bounded in-memory structures (:mod:`ember_ui._store`) under a lock held for microseconds;
the web server runs in a thread with its own event loop and reads snapshots. The server
starts on ``ember_streaming_started`` (binding the port takes microseconds; the server
thread starts in the background) and is stopped, its thread joined, on
``ember_streaming_stopped`` — or on ``ember_context_stopped`` if the streaming context was
never stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import attrs
from ember import hookimpl

from ember_ui._store import StreamingStore

if TYPE_CHECKING:
    from ember.events import BatchInfo, JobInfo, OutputOperationInfo, ReceiverInfo

    from ember_ui._server import UIServer

__all__ = [
    "CONFIG_DEFAULTS",
    "StreamingUI",
    "UISettings",
    "api_version",
    "current_ui",
]

#: The ember plugin API this plugin was built for.
api_version = "1.0"

#: The configuration keys of the UI and their defaults (declared by ``ember_config_defaults``).
CONFIG_DEFAULTS: dict[str, Any] = {
    "ember.ui.enabled": True,
    "ember.ui.host": "127.0.0.1",
    "ember.ui.port": 4040,
    "ember.ui.retainedBatches": 1000,
}

log = logging.getLogger("ember.ui")


@attrs.frozen(kw_only=True)
class UISettings:
    """The UI's configuration of one context, read and checked from its ``Conf``.

    :ivar enabled: whether to serve the UI.
    :ivar host: the address to listen on.
    :ivar port: the first port to try (0: any free port).
    :ivar retained_batches: how many completed batches to keep.
    :ivar app_id: the application id of the API paths (``local-<ms>`` or ``app-<ms>``).
    :ivar app_name: the application name.
    :ivar master: the master URL.
    """

    enabled: bool
    host: str
    port: int = attrs.field()
    retained_batches: int = attrs.field()
    app_id: str = ""
    app_name: str = "ember"
    master: str = ""

    @port.validator
    def _check_port(self, attribute: Any, value: int) -> None:
        if not 0 <= value <= 65535:
            raise ValueError(f"ember.ui.port must be a TCP port (0 to 65535), got {value}")

    @retained_batches.validator
    def _check_retained(self, attribute: Any, value: int) -> None:
        if value < 1:
            raise ValueError(f"ember.ui.retainedBatches must be at least 1, got {value}")

    @classmethod
    def from_conf(cls, conf: Any, app_name: str = "ember", master: str = "") -> UISettings:
        """Read the ``ember.ui.*`` keys of ``conf`` (an ``ember.Conf``).

        ``ember.streaming.ui.retainedBatches`` (Spark's ``spark.streaming.ui.retainedBatches``)
        is honoured when set.

        :raises ValueError: a value of the wrong type or out of range, naming the key.
        """
        def pick(key: str, getter: str) -> Any:
            value = getattr(conf, getter)(key)
            return CONFIG_DEFAULTS[key] if value is None else value

        retained = pick("ember.ui.retainedBatches", "getInt")
        if conf.contains("ember.streaming.ui.retainedBatches"):
            retained = conf.getInt("ember.streaming.ui.retainedBatches")
        prefix = "local" if master.startswith(("local", "inline")) else "app"
        return cls(
            enabled=bool(pick("ember.ui.enabled", "getBoolean")),
            host=str(pick("ember.ui.host", "get")),
            port=pick("ember.ui.port", "getInt"),
            retained_batches=retained,
            app_id=f"{prefix}-{time.time_ns() // 1_000_000}",
            app_name=app_name,
            master=master,
        )


@attrs.define(eq=False)
class StreamingUI:
    """The UI of one streaming context: its store and, once started, its web server.

    :ivar settings: the configuration it runs with.
    :ivar store: the events seen so far.
    :ivar server: the web server, or ``None`` before the start (or if it could not start).
    """

    settings: UISettings
    store: StreamingStore
    server: UIServer | None = None

    @property
    def url(self) -> str | None:
        """The statistics page's URL, e.g. ``http://127.0.0.1:4040/streaming/``."""
        return None if self.server is None else self.server.url + "/streaming/"

    @property
    def base_url(self) -> str | None:
        """The server's base URL, e.g. ``http://127.0.0.1:4040``."""
        return None if self.server is None else self.server.url


# One Context and one StreamingContext are active at a time in a process (ember's rule), so
# the plugin module keeps the settings of the active Context and the UI of the active
# StreamingContext.
_lock = threading.Lock()
_settings: UISettings | None = None
_ui: StreamingUI | None = None
_current_op = threading.local()


def current_ui() -> StreamingUI | None:
    """The UI of the running streaming context, or ``None`` (none running, or UI disabled)."""
    return _ui


def _ember_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ember-core")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _open_ui() -> StreamingUI | None:
    """The UI of the active streaming context, made at its first event."""
    global _ui
    settings = _settings
    if settings is None or not settings.enabled:
        return None
    with _lock:
        if _ui is None:
            store = StreamingStore(settings.retained_batches, settings.app_id,
                                   settings.app_name, settings.master)
            _ui = StreamingUI(settings, store)
        return _ui


def _close_ui(stop_time: int | None) -> None:
    global _ui
    with _lock:
        ui, _ui = _ui, None
    if ui is None:
        return
    ui.store.on_stopped(stop_time)
    if ui.server is not None:
        ui.server.stop()
        log.info("ember UI at %s stopped", ui.server.url)


# --------------------------------------------------------------------------- setup hooks


@hookimpl
def ember_config_defaults() -> dict[str, Any]:
    """Declare the ``ember.ui.*`` keys (:data:`CONFIG_DEFAULTS`)."""
    return dict(CONFIG_DEFAULTS)


@hookimpl
def ember_configure(conf: Any) -> None:
    """Check the ``ember.ui.*`` values before the context starts anything.

    :raises ValueError: a value of the wrong type or out of range.
    """
    UISettings.from_conf(conf)


@hookimpl
def ember_context_started(context: Any) -> None:
    """Remember the new context's UI settings."""
    global _settings
    _settings = UISettings.from_conf(context.getConf(), context.appName, context.master)


@hookimpl
def ember_context_stopped(context: Any) -> None:
    """Stop a UI left running by a streaming context that was never stopped."""
    global _settings
    _close_ui(None)
    _settings = None


# --------------------------------------------------------------------------- streaming


@hookimpl
def ember_streaming_started(streaming_context: Any) -> None:
    """Start the web server of this streaming context and log its URL."""
    ui = _open_ui()
    if ui is None:
        return
    from ember_ui._server import PORT_RETRIES, UIServer  # asyncio & co. only when needed

    clock = streaming_context.clock
    ui.store.on_started(clock.now_ms(), round(streaming_context.batchDuration * 1000), clock)
    server = UIServer(ui.store, ui.settings.host, ui.settings.port, version=_ember_version())
    try:
        server.start()
    except OSError as exc:
        log.error("ember UI: cannot listen on %s port %d (or the %d ports after it): %s; "
                  "the UI is off (set ember.ui.port, or ember.ui.enabled=false)",
                  ui.settings.host, ui.settings.port, PORT_RETRIES, exc)
        return
    ui.server = server
    log.info("ember UI: streaming statistics at %s", ui.url)


@hookimpl
def ember_streaming_stopped(streaming_context: Any) -> None:
    """Stop the web server and join its thread."""
    _close_ui(streaming_context.clock.now_ms())


@hookimpl
def ember_batch_submitted(batch: BatchInfo) -> None:
    """Record a queued batch."""
    ui = _ui or _open_ui()
    if ui is not None:
        ui.store.on_batch_submitted(batch)


@hookimpl
def ember_batch_started(batch: BatchInfo) -> None:
    """Record a batch that started processing."""
    ui = _ui
    if ui is not None:
        ui.store.on_batch_started(batch)


@hookimpl
def ember_batch_completed(batch: BatchInfo) -> None:
    """Record a completed batch."""
    ui = _ui
    if ui is not None:
        ui.store.on_batch_completed(batch)


@hookimpl
def ember_output_operation_started(op: OutputOperationInfo) -> None:
    """Record a started output operation; its jobs are attributed to it until it completes."""
    ui = _ui
    if ui is not None:
        ui.store.on_operation(op)
        _current_op.key = (op.batch_time, op.id)


@hookimpl
def ember_output_operation_completed(op: OutputOperationInfo) -> None:
    """Record a completed output operation."""
    _current_op.key = None
    ui = _ui
    if ui is not None:
        ui.store.on_operation(op)


@hookimpl
def ember_job_started(job: JobInfo) -> None:
    """Attribute a job to the output operation running in this thread, if any."""
    key = getattr(_current_op, "key", None)
    ui = _ui
    if key is not None and ui is not None:
        ui.store.on_job(key[0], key[1], job.job_id)


@hookimpl
def ember_receiver_started(receiver: ReceiverInfo) -> None:
    """Record a started receiver."""
    ui = _ui or _open_ui()
    if ui is not None:
        ui.store.on_receiver(receiver)


@hookimpl
def ember_receiver_error(receiver: ReceiverInfo) -> None:
    """Record a receiver's error."""
    ui = _ui
    if ui is not None:
        ui.store.on_receiver(receiver)


@hookimpl
def ember_receiver_stopped(receiver: ReceiverInfo) -> None:
    """Record a stopped receiver."""
    ui = _ui
    if ui is not None:
        ui.store.on_receiver(receiver)
