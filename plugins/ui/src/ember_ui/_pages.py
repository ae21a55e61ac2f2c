"""The HTML pages and the static assets (JavaScript, CSS, icon), all served from memory.

The pages are small shells: ``static/ui.js`` fills them from the JSON API and keeps them
live with the server-sent events of ``/streaming/events``. Nothing is loaded from another
host. Assets are read once from the package (:mod:`importlib.resources`) and cached.
"""

from __future__ import annotations

import functools
import html
from importlib import resources
from typing import TYPE_CHECKING

from ember_ui._store import Snapshot

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["ASSETS", "asset", "page", "render"]

#: The files of ``ember_ui/static`` that are served, with their media types.
ASSETS: dict[str, str] = {
    "ui.js": "text/javascript; charset=utf-8",
    "ui.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

_TITLES = {"statistics": "Streaming Statistics", "batch": "Details of batch"}

_SHELL = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {app} · ember</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/ui.css">
</head>
<body data-page="{page}" data-app-id="{app_id}" data-retained="{retained}">
<header class="topbar">
  <a class="brand" href="/streaming/"><img src="/static/favicon.svg" alt="" width="22"
     height="22"> ember</a>
  <nav>
    <a href="/streaming/" class="{nav_statistics}">Streaming</a>
    <a href="/api/v1/applications/{app_id}/streaming/statistics">API</a>
    <a href="/metrics">Metrics</a>
  </nav>
  <span class="app" title="master {master}">{app} <small>{master} · ember {version}</small></span>
  <span id="live" class="live" title="live updates">connecting…</span>
</header>
<main id="main">
{body}
</main>
<noscript><p class="note">This page needs JavaScript; the same data is served as JSON under
<a href="/api/v1/applications/{app_id}/streaming/statistics">/api/v1</a>.</p></noscript>
<script src="/static/ui.js"></script>
</body>
</html>
"""

_STATISTICS = """<h1>Streaming Statistics</h1>
<p id="summary" class="summary">Waiting for the streaming context…</p>
<section>
  <table id="stats" class="stats">
    <thead><tr><th class="metric">Metric</th><th>Timelines (batch times)</th>
      <th>Histograms</th></tr></thead>
    <tbody>
      <tr data-metric="inputRate"><td class="metric"><div class="name">Input Rate</div>
        <div class="avg" id="avg-inputRate">&ndash;</div><div class="receivers-note"
        id="receivers-note"></div></td>
        <td><svg class="timeline" id="timeline-inputRate"></svg></td>
        <td><svg class="histogram" id="histogram-inputRate"></svg></td></tr>
      <tr data-metric="schedulingDelay"><td class="metric"><div class="name">Scheduling Delay
        </div><div class="avg" id="avg-schedulingDelay">&ndash;</div></td>
        <td><svg class="timeline" id="timeline-schedulingDelay"></svg></td>
        <td><svg class="histogram" id="histogram-schedulingDelay"></svg></td></tr>
      <tr data-metric="processingTime"><td class="metric"><div class="name">Processing Time
        </div><div class="avg" id="avg-processingTime">&ndash;</div><div class="legend">
        <span class="dash"></span> batch interval</div></td>
        <td><svg class="timeline" id="timeline-processingTime"></svg></td>
        <td><svg class="histogram" id="histogram-processingTime"></svg></td></tr>
      <tr data-metric="totalDelay"><td class="metric"><div class="name">Total Delay</div>
        <div class="avg" id="avg-totalDelay">&ndash;</div></td>
        <td><svg class="timeline" id="timeline-totalDelay"></svg></td>
        <td><svg class="histogram" id="histogram-totalDelay"></svg></td></tr>
    </tbody>
  </table>
</section>
<section>
  <h2 id="receivers-title">Input Streams and Receivers</h2>
  <table id="receivers" class="grid">
    <thead><tr><th>Stream</th><th>Name</th><th>Status</th><th>Records received</th>
      <th>Avg rate (records/s)</th><th>Last error time</th><th>Last error</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
<section>
  <h2 id="active-title">Active Batches (0)</h2>
  <table id="active-batches" class="grid">
    <thead><tr><th>Batch Time</th><th>Records</th><th>Scheduling Delay</th>
      <th>Processing Time</th><th>Output Ops: Succeeded/Total</th><th>Status</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
<section>
  <h2 id="completed-title">Completed Batches (0)</h2>
  <table id="completed-batches" class="grid">
    <thead><tr><th>Batch Time</th><th>Records</th><th>Scheduling Delay</th>
      <th>Processing Time</th><th>Total Delay</th><th>Output Ops: Succeeded/Total</th>
      <th>Error</th></tr></thead>
    <tbody></tbody>
  </table>
  <p class="note" id="completed-note"></p>
</section>
"""

_BATCH = """<h1 id="batch-title">Details of batch</h1>
<ul id="batch-summary" class="facts"></ul>
<section>
  <h2>Input</h2>
  <table id="batch-inputs" class="grid">
    <thead><tr><th>Stream</th><th>Name</th><th>Records</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
<section>
  <h2>Output Operations</h2>
  <table id="operations" class="grid">
    <thead><tr><th>Output Op Id</th><th>Description</th><th>Status</th><th>Started</th>
      <th>Duration</th><th>Job Ids</th><th>Error</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
<p><a href="/streaming/">← Streaming statistics</a></p>
"""


@functools.cache
def _read_asset(name: str) -> bytes:
    return resources.files("ember_ui").joinpath("static", name).read_bytes()


def asset(name: str) -> tuple[bytes, str] | None:
    """The bytes and media type of the static asset ``name``, or ``None``."""
    media_type = ASSETS.get(name)
    if media_type is None:
        return None
    return _read_asset(name), media_type


def render(kind: str, snap: Snapshot, version: str, retained: int = 0) -> str:
    """The HTML of the page ``kind`` (``statistics`` or ``batch``)."""
    body = _STATISTICS if kind == "statistics" else _BATCH
    return _SHELL.format(
        title=_TITLES[kind],
        page=kind,
        app=html.escape(snap.app_name),
        app_id=html.escape(snap.app_id),
        master=html.escape(snap.master),
        version=html.escape(version),
        retained=retained,
        nav_statistics="active" if kind == "statistics" else "",
        body=body,
    )


def page(kind: str, snap: Snapshot, version: str, retained: int = 0) -> Response:
    """:func:`render` as a Starlette response."""
    from starlette.responses import HTMLResponse

    return HTMLResponse(render(kind, snap, version, retained),
                        headers={"Cache-Control": "no-cache"})
