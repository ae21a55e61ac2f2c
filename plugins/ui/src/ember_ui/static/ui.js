/* ember UI: fills the pages from the JSON API and keeps them live with server-sent events.
 * Plain JavaScript, no library; the charts are SVG drawn here. Every text from the engine
 * (names, descriptions, tracebacks) is inserted with textContent, never as HTML. */
(function () {
  "use strict";

  var body = document.body;
  var PAGE = body.dataset.page;
  var APP_ID = body.dataset.appId;
  var API = "/api/v1/applications/" + encodeURIComponent(APP_ID) + "/streaming";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var MAX_ROWS = 100;

  // ------------------------------------------------------------------ formatting
  function pad(n, width) {
    var s = String(n);
    while (s.length < (width || 2)) s = "0" + s;
    return s;
  }

  function fmtTime(ms) {
    if (ms === null || ms === undefined) return "–";
    var d = new Date(ms);
    var s = d.getFullYear() + "/" + pad(d.getMonth() + 1) + "/" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    return ms % 1000 ? s + "." + pad(ms % 1000, 3) : s;
  }

  function fmtClock(ms, millis) {
    var d = new Date(ms);
    var s = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    return millis ? s + "." + pad(ms % 1000, 3) : s;
  }

  var TIME_STEPS = [100, 200, 250, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000,
    300000, 600000, 900000, 1800000, 3600000, 7200000, 21600000, 43200000, 86400000];

  function niceTimeStep(raw) {
    for (var i = 0; i < TIME_STEPS.length; i++) if (TIME_STEPS[i] >= raw) return TIME_STEPS[i];
    return Math.ceil(raw / 86400000) * 86400000;
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60000) return Number((ms / 1000).toFixed(ms < 10000 ? 2 : 1)) + " s";
    if (ms < 3600000) return Number((ms / 60000).toFixed(1)) + " min";
    return Number((ms / 3600000).toFixed(1)) + " h";
  }

  function fmtSpan(ms) {
    var s = Math.floor(ms / 1000);
    if (s < 1) return Math.max(0, Math.round(ms)) + " ms";
    var units = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
    var plural = function (n, name) { return n + " " + name + (n === 1 ? "" : "s"); };
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(s / units[i][0]);
      if (n > 0) {
        var out = plural(n, units[i][1]);
        var next = units[i + 1];
        var rest = next ? Math.floor((s - n * units[i][0]) / next[0]) : 0;
        return rest ? out + " " + plural(rest, next[1]) : out;
      }
    }
    return plural(s, "second");
  }

  function fmtNumber(x, digits) {
    if (x === null || x === undefined) return "–";
    return Number(x).toLocaleString("en-US", {
      minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0,
    });
  }

  function fmtApiDate(text) {
    // Spark's API dates read "2024-05-01T12:00:01.000GMT" (UTC): shown in local time.
    if (!text) return "–";
    var ms = Date.parse(String(text).replace(/GMT$/, "Z"));
    return isNaN(ms) ? text : fmtTime(ms);
  }

  function firstLine(text) {
    return text ? String(text).split("\n").filter(function (l) { return l.trim(); }).pop() : "";
  }

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "className") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }

  function svgEl(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function byId(id) { return document.getElementById(id); }

  function batchLink(batchId) {
    return el("a", { href: "/streaming/batch/?id=" + batchId, text: fmtTime(batchId) });
  }

  function errorCell(text) {
    if (!text) return el("td", { className: "muted", text: "–" });
    var details = el("details", { className: "error" },
      el("summary", { text: firstLine(text) }), el("pre", { text: text }));
    return el("td", null, details);
  }

  function setLive(text, kind) {
    var live = byId("live");
    live.textContent = text;
    live.className = "live " + (kind || "");
  }

  // ------------------------------------------------------------------ charts
  function niceStep(max, ticks) {
    var raw = max / Math.max(1, ticks);
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var norm = raw / mag;
    var step = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
    return step * mag;
  }

  function unitFor(metric, max) {
    if (metric === "inputRate") return { name: "records/s", div: 1 };
    if (max >= 120000) return { name: "min", div: 60000 };
    if (max >= 2000) return { name: "s", div: 1000 };
    return { name: "ms", div: 1 };
  }

  function seriesOf(batches, metric, duration) {
    var points = [];
    batches.forEach(function (b) {
      var v = metric === "inputRate" ? (duration ? b.inputSize * 1000 / duration : null)
        : b[metric];
      if (v !== null && v !== undefined) points.push({ t: b.batchId, v: v, b: b });
    });
    return points;
  }

  function drawTimeline(svg, points, opts) {
    clear(svg);
    var width = svg.clientWidth || 600;
    var height = svg.clientHeight || 160;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.dataset.points = String(points.length);
    var m = { left: 58, right: 14, top: 20, bottom: 26 };
    var w = width - m.left - m.right;
    var h = height - m.top - m.bottom;
    var unit = opts.unit;
    var ymax = opts.ymax;
    var step = niceStep(ymax / unit.div, 4);
    var top = Math.max(step, Math.ceil(ymax / unit.div / step) * step);
    var y = function (v) { return m.top + h - (v / unit.div) / top * h; };
    var t0 = points.length ? points[0].t : 0;
    var t1 = points.length ? points[points.length - 1].t : 1;
    if (t1 <= t0) { t0 -= opts.duration || 1000; t1 += opts.duration || 1000; }
    var x = function (t) { return m.left + (t - t0) / (t1 - t0) * w; };

    var grid = svgEl("g", { class: "grid" });
    for (var v = 0; v <= top + step / 2; v += step) {
      var yy = y(v * unit.div);
      grid.appendChild(svgEl("line", { x1: m.left, x2: m.left + w, y1: yy, y2: yy }));
      grid.appendChild(svgEl("text", { x: m.left - 6, y: yy + 4, class: "tick", "text-anchor": "end" },
        fmtNumber(v, step % 1 ? (step < 0.1 ? 2 : 1) : 0)));
    }
    svg.appendChild(grid);
    svg.appendChild(svgEl("text", { x: 4, y: 11, class: "unit" }, unit.name));
    svg.appendChild(svgEl("line", { x1: m.left, x2: m.left + w, y1: m.top + h, y2: m.top + h, class: "axis" }));
    var tstep = niceTimeStep((t1 - t0) / Math.max(2, Math.floor(w / 120)));
    for (var tt = Math.ceil(t0 / tstep) * tstep; tt <= t1; tt += tstep) {
      var tx = x(tt);
      svg.appendChild(svgEl("line", { x1: tx, x2: tx, y1: m.top + h, y2: m.top + h + 4, class: "axis" }));
      var anchor = tx > m.left + w - 32 ? "end" : tx < m.left + 32 ? "start" : "middle";
      svg.appendChild(svgEl("text", { x: tx, y: height - 8, class: "tick", "text-anchor": anchor },
        fmtClock(tt, tstep < 1000)));
    }
    if (opts.interval) {
      var iy = y(opts.interval);
      svg.appendChild(svgEl("line", { x1: m.left, x2: m.left + w, y1: iy, y2: iy, class: "interval" }));
      svg.appendChild(svgEl("text", { x: m.left + w - 4, y: iy - 4, class: "interval-label", "text-anchor": "end" },
        "batch interval " + fmtDuration(opts.interval)));
    }
    if (!points.length) {
      svg.appendChild(svgEl("text", { x: m.left + w / 2, y: m.top + h / 2, class: "empty", "text-anchor": "middle" },
        "no completed batch yet"));
      return;
    }
    var d = points.map(function (p, k) {
      return (k ? "L" : "M") + x(p.t).toFixed(1) + "," + y(p.v).toFixed(1);
    }).join("");
    svg.appendChild(svgEl("path", { d: d, class: "line" }));
    var dots = svgEl("g", { class: "dots" });
    var stride = Math.max(1, Math.ceil(points.length / 400));
    for (var k = points.length - 1; k >= 0; k -= stride) {
      var p = points[k];
      var c = svgEl("circle", { cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 2.6, "data-batch-id": p.t });
      c.appendChild(svgEl("title", {}, fmtTime(p.t) + ": " + opts.format(p.v)));
      dots.appendChild(c);
    }
    dots.addEventListener("click", function (ev) {
      var id = ev.target.getAttribute && ev.target.getAttribute("data-batch-id");
      if (id) window.location.href = "/streaming/batch/?id=" + id;
    });
    svg.appendChild(dots);
  }

  function drawHistogram(svg, points, opts) {
    clear(svg);
    var width = svg.clientWidth || 260;
    var height = svg.clientHeight || 160;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    var m = { left: 8, right: 28, top: 20, bottom: 26 };
    var w = width - m.left - m.right;
    var h = height - m.top - m.bottom;
    var unit = opts.unit;
    var step = niceStep(opts.ymax / unit.div, 4);
    var top = Math.max(step, Math.ceil(opts.ymax / unit.div / step) * step) * unit.div;
    var bins = 12;
    var counts = new Array(bins).fill(0);
    points.forEach(function (p) {
      counts[Math.min(bins - 1, Math.floor(p.v / top * bins))] += 1;
    });
    var cmax = Math.max.apply(null, counts.concat([1]));
    svg.dataset.total = String(points.length);
    var bh = h / bins;
    for (var i = 0; i < bins; i++) {
      if (!counts[i]) continue;
      var bw = counts[i] / cmax * w;
      var r = svgEl("rect", {
        x: m.left, y: (m.top + h - (i + 1) * bh + 1).toFixed(1), width: bw.toFixed(1),
        height: Math.max(1, bh - 2).toFixed(1), class: "bar",
      });
      r.appendChild(svgEl("title", {}, counts[i] + " batch" + (counts[i] === 1 ? "" : "es") + " in " +
        opts.format(i * top / bins) + " – " + opts.format((i + 1) * top / bins)));
      svg.appendChild(r);
      svg.appendChild(svgEl("text", { x: m.left + bw + 3, y: m.top + h - (i + 0.5) * bh + 4, class: "tick" },
        String(counts[i])));
    }
    svg.appendChild(svgEl("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + h, class: "axis" }));
    svg.appendChild(svgEl("text", { x: m.left + w, y: height - 8, class: "tick", "text-anchor": "end" },
      "#batches"));
  }

  // ------------------------------------------------------------------ statistics page
  var state = {
    completed: [], active: [], receivers: [], statistics: {}, retained: 1000,
    batchDuration: null, startTime: null, stopTime: null, now: null, total: 0, showAll: false,
  };

  var METRICS = {
    inputRate: { avg: "avgInputRate", format: function (v) { return fmtNumber(v, 2) + " records/s"; } },
    schedulingDelay: { avg: "avgSchedulingDelay", format: fmtDuration },
    processingTime: { avg: "avgProcessingTime", format: fmtDuration },
    totalDelay: { avg: "avgTotalDelay", format: fmtDuration },
  };

  function renderSummary() {
    var s = state.statistics;
    var summary = byId("summary");
    if (!state.startTime) { summary.textContent = "Waiting for the streaming context…"; return; }
    var running = state.stopTime === null || state.stopTime === undefined;
    var span = (running ? state.now : state.stopTime) - state.startTime;
    clear(summary).appendChild(document.createTextNode(
      (running ? "Running batches of " : "Ran batches of ") + fmtDuration(state.batchDuration) +
      " for " + fmtSpan(span) + " since " + fmtTime(state.startTime) + " (" +
      fmtNumber(s.numTotalCompletedBatches) + " completed batches, " +
      fmtNumber(s.numProcessedRecords) + " records)" + (running ? "." : "; stopped.")));
  }

  function renderCharts() {
    var duration = state.batchDuration;
    Object.keys(METRICS).forEach(function (metric) {
      var spec = METRICS[metric];
      var points = seriesOf(state.completed, metric, duration);
      var max = points.reduce(function (a, p) { return Math.max(a, p.v); }, 0);
      var interval = metric === "processingTime" ? duration : null;
      var ymax = Math.max(max, interval ? interval * 1.1 : 0, metric === "inputRate" ? 1 : 10);
      var unit = unitFor(metric, ymax);
      var opts = { unit: unit, ymax: ymax, interval: interval, duration: duration, format: spec.format };
      drawTimeline(byId("timeline-" + metric), points, opts);
      drawHistogram(byId("histogram-" + metric), points, opts);
      var avg = state.statistics[spec.avg];
      byId("avg-" + metric).textContent = avg === undefined ? "Avg: –" : "Avg: " + spec.format(avg);
    });
    var withReceivers = state.receivers.filter(function (r) { return r.isActive !== undefined; });
    byId("receivers-note").textContent = state.receivers.length ?
      state.receivers.length + " input stream" + (state.receivers.length === 1 ? "" : "s") +
      ", " + withReceivers.length + " receiver" + (withReceivers.length === 1 ? "" : "s") : "";
  }

  function renderReceivers() {
    var tbody = clear(byId("receivers").tBodies[0]);
    if (!state.receivers.length) {
      tbody.appendChild(el("tr", null, el("td", { colspan: 7, className: "muted", text: "No input stream has reported yet." })));
    }
    state.receivers.forEach(function (r) {
      var status = r.isActive === undefined ? "pull source" : r.isActive ? "ACTIVE" : "INACTIVE";
      var cls = r.isActive === undefined ? "muted" : r.isActive ? "ok" : "bad";
      tbody.appendChild(el("tr", { "data-stream-id": r.streamId },
        el("td", { text: String(r.streamId) }),
        el("td", { text: r.streamName }),
        el("td", null, el("span", { className: "status " + cls, text: status })),
        el("td", { className: "num", text: fmtNumber(r.numRecordsReceived) }),
        el("td", { className: "num", text: r.avgEventRate === undefined ? "–" : fmtNumber(r.avgEventRate, 2) }),
        el("td", { text: fmtApiDate(r.lastErrorTime) }),
        errorCell(r.lastError || r.lastErrorMessage)));
    });
  }

  function opsCell(b) {
    var text = b.numCompletedOutputOps + "/" + b.numTotalOutputOps;
    var td = el("td", { className: "num" }, text);
    if (b.numFailedOutputOps) td.appendChild(el("span", { className: "status bad", text: " " + b.numFailedOutputOps + " failed" }));
    return td;
  }

  function renderActive() {
    byId("active-title").textContent = "Active Batches (" + state.active.length + ")";
    var tbody = clear(byId("active-batches").tBodies[0]);
    if (!state.active.length) {
      tbody.appendChild(el("tr", null, el("td", { colspan: 6, className: "muted", text: "No batch is queued or running." })));
    }
    state.active.slice().reverse().forEach(function (b) {
      tbody.appendChild(el("tr", { "data-batch-id": b.batchId },
        el("td", null, batchLink(b.batchId)),
        el("td", { className: "num", text: fmtNumber(b.inputSize) }),
        el("td", { className: "num", text: fmtDuration(b.schedulingDelay) }),
        el("td", { className: "num", text: fmtDuration(b.processingTime) }),
        opsCell(b),
        el("td", null, el("span", { className: "status " + (b.status === "PROCESSING" ? "run" : "muted"), text: b.status.toLowerCase() }))));
    });
  }

  function renderCompleted() {
    var all = state.completed;
    byId("completed-title").textContent = "Completed Batches (last " + all.length + " out of " +
      fmtNumber(state.total) + ")";
    var tbody = clear(byId("completed-batches").tBodies[0]);
    var rows = state.showAll ? all.slice() : all.slice(Math.max(0, all.length - MAX_ROWS));
    rows.reverse().forEach(function (b) {
      tbody.appendChild(el("tr", { "data-batch-id": b.batchId, className: b.numFailedOutputOps ? "failed" : "" },
        el("td", null, batchLink(b.batchId)),
        el("td", { className: "num", text: fmtNumber(b.inputSize) }),
        el("td", { className: "num", text: fmtDuration(b.schedulingDelay) }),
        el("td", { className: "num", text: fmtDuration(b.processingTime) }),
        el("td", { className: "num", text: fmtDuration(b.totalDelay) }),
        opsCell(b),
        errorCell(b.firstFailureReason)));
    });
    if (!all.length) {
      tbody.appendChild(el("tr", null, el("td", { colspan: 7, className: "muted", text: "No batch has completed yet." })));
    }
    var note = clear(byId("completed-note"));
    if (all.length > MAX_ROWS) {
      note.appendChild(document.createTextNode(state.showAll ?
        "Showing all " + all.length + " retained batches. " :
        "Showing the " + MAX_ROWS + " most recent of " + all.length + " retained batches. "));
      var toggle = el("a", { href: "#", text: state.showAll ? "Show fewer" : "Show all" });
      toggle.addEventListener("click", function (ev) {
        ev.preventDefault();
        state.showAll = !state.showAll;
        renderCompleted();
      });
      note.appendChild(toggle);
    }
  }

  var pending = false;
  function scheduleRender() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      renderSummary();
      renderCharts();
      renderReceivers();
      renderActive();
      renderCompleted();
      body.dataset.version = String(state.total);
    });
  }

  function applyUpdate(doc) {
    if (doc.reset) state.completed = [];
    for (var i = 0; i < doc.completed.length; i++) state.completed.push(doc.completed[i]);
    state.completed.sort(function (a, b) { return a.batchId - b.batchId; });
    var extra = state.completed.length - (doc.retained || state.retained);
    if (extra > 0) state.completed.splice(0, extra);
    state.active = doc.active;
    state.receivers = doc.receivers;
    state.statistics = doc.statistics;
    state.retained = doc.retained;
    state.batchDuration = doc.batchDuration;
    state.startTime = doc.startTime;
    state.stopTime = doc.stopTime;
    state.now = doc.now;
    state.total = doc.total;
  }

  function connect(onUpdate) {
    if (!window.EventSource) { setLive("no live updates", "bad"); return; }
    var source = new EventSource("/streaming/events");
    source.addEventListener("open", function () { setLive("live", "ok"); });
    source.addEventListener("update", function (ev) { onUpdate(JSON.parse(ev.data)); });
    source.addEventListener("end", function () {
      source.close();
      setLive("stopped", "muted");
    });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) setLive("disconnected", "bad");
      else setLive("reconnecting…", "bad");
    });
  }

  // ------------------------------------------------------------------ batch page
  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) return r.text().then(function (t) { throw new Error(t || r.statusText); });
      return r.json();
    });
  }

  function renderBatch(b, ops) {
    byId("batch-title").textContent = "Details of batch at " + fmtTime(b.batchId);
    body.dataset.status = b.status;
    var facts = clear(byId("batch-summary"));
    [["Batch Duration", fmtDuration(b.batchDuration)], ["Status", b.status.toLowerCase()],
     ["Input Size", fmtNumber(b.inputSize) + " records"],
     ["Scheduling Delay", fmtDuration(b.schedulingDelay)],
     ["Processing Time", fmtDuration(b.processingTime)],
     ["Total Delay", fmtDuration(b.totalDelay)],
     ["Output Operations", b.numCompletedOutputOps + " succeeded, " + b.numFailedOutputOps +
       " failed, " + b.numActiveOutputOps + " active, " + b.numTotalOutputOps + " in total"],
    ].forEach(function (f) {
      facts.appendChild(el("li", null, el("strong", { text: f[0] + ": " }), f[1]));
    });
    var inputs = clear(byId("batch-inputs").tBodies[0]);
    (b.inputInfos || []).forEach(function (i) {
      inputs.appendChild(el("tr", null, el("td", { text: String(i.streamId) }),
        el("td", { text: i.description || "" }), el("td", { className: "num", text: fmtNumber(i.numRecords) })));
    });
    var tbody = clear(byId("operations").tBodies[0]);
    ops.forEach(function (op) {
      var status = op.failureReason ? "failed" : op.endTime ? "succeeded" : op.startTime ? "running" : "queued";
      var cls = { failed: "bad", succeeded: "ok", running: "run", queued: "muted" }[status];
      var desc = el("td", null, el("div", { text: op.name }));
      if (op.description && op.description !== op.name) desc.appendChild(el("div", { className: "muted small", text: op.description }));
      var err = el("td", { className: "muted", text: "–" });
      if (op.failureReason) {
        err = el("td", null, el("details", { className: "error", open: "open" },
          el("summary", { text: firstLine(op.failureReason) }), el("pre", { className: "traceback", text: op.failureReason })));
      }
      tbody.appendChild(el("tr", { "data-op-id": op.outputOpId, className: op.failureReason ? "failed" : "" },
        el("td", { text: String(op.outputOpId) }), desc,
        el("td", null, el("span", { className: "status " + cls, text: status })),
        el("td", { text: fmtApiDate(op.startTime) }),
        el("td", { className: "num", text: fmtDuration(op.duration) }),
        el("td", { text: (op.jobIds || []).join(", ") || "–" }), err));
    });
  }

  function loadBatch(id) {
    return Promise.all([getJSON(API + "/batches/" + id), getJSON(API + "/batches/" + id + "/operations")])
      .then(function (r) { renderBatch(r[0], r[1]); return r[0]; });
  }

  function startBatchPage() {
    var id = new URLSearchParams(window.location.search).get("id");
    if (!id || !/^\d+$/.test(id)) {
      byId("batch-title").textContent = "No batch given: open this page from the statistics page.";
      setLive("–");
      return;
    }
    var done = false;
    loadBatch(id).then(function (b) {
      done = b.status === "COMPLETED";
      if (done) { setLive("completed", "muted"); return; }
      connect(function () {
        if (!done) loadBatch(id).then(function (bb) { done = bb.status === "COMPLETED"; });
      });
    }).catch(function (e) {
      byId("batch-title").textContent = "Batch " + id + ": " + e.message;
      setLive("not found", "bad");
    });
  }

  // ------------------------------------------------------------------ start
  if (PAGE === "statistics") {
    connect(function (doc) { applyUpdate(doc); scheduleRender(); });
    window.addEventListener("resize", scheduleRender);
  } else if (PAGE === "batch") {
    startBatchPage();
  }
})();
