"""``/metrics``: the store's counters in the Prometheus text format.

A custom collector reads one :class:`~ember_ui._store.Snapshot` per scrape, so the hooks never
touch ``prometheus_client`` (no extra locks or work on the engine's threads), and the values
of one scrape are consistent with each other. Each server has its own
:class:`prometheus_client.CollectorRegistry`: nothing is added to the global registry, so
two contexts one after the other, or an application with its own metrics, never clash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ember_ui._store import DELAY_BUCKETS, Snapshot

__all__ = ["CONTENT_TYPE", "StreamingCollector", "make_registry", "render"]

#: The content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _buckets(hist: tuple[tuple[int, ...], int, int]) -> tuple[list[tuple[str, float]], float]:
    counts, total_ms, _n = hist
    out: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip((*map(str, DELAY_BUCKETS), "+Inf"), counts, strict=True):
        running += count
        out.append((bound, float(running)))
    return out, total_ms / 1000.0


class StreamingCollector(Collector):
    """Exposes the streaming counters of the snapshots ``snapshot()`` returns.

    :param snapshot: returns the current :class:`~ember_ui._store.Snapshot`.
    """

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families of one snapshot."""
        snap = self._snapshot()
        labels = ["app_id"]
        app = [snap.app_id]

        completed = CounterMetricFamily(
            "ember_streaming_batches_completed",
            "Batches completed (successfully or not) since the streaming context started.",
            labels=labels)
        completed.add_metric(app, snap.total_completed)
        yield completed

        failed = CounterMetricFamily(
            "ember_streaming_batches_failed",
            "Completed batches in which an output operation failed.", labels=labels)
        failed.add_metric(app, snap.total_failed)
        yield failed

        for name, value, text in (
            ("ember_streaming_batches_queued", len(snap.waiting),
             "Batches generated and waiting for earlier batches to finish."),
            ("ember_streaming_batches_running", len(snap.running),
             "Batches whose output operations are running."),
            ("ember_streaming_batch_interval_seconds", (snap.batch_duration or 0) / 1000.0,
             "The batch interval."),
        ):
            gauge = GaugeMetricFamily(name, text, labels=labels)
            gauge.add_metric(app, value)
            yield gauge

        records = CounterMetricFamily(
            "ember_streaming_records_received",
            "Records each input stream (receiver or pull source) put into batches.",
            labels=[*labels, "stream_id", "stream_name"])
        for stream_id in sorted(set(snap.stream_records) | set(snap.receivers)):
            info = snap.receivers.get(stream_id)
            name = info.name if info else snap.stream_names.get(stream_id, "")
            records.add_metric([snap.app_id, str(stream_id), name],
                               snap.stream_records.get(stream_id, 0))
        yield records

        processed = CounterMetricFamily(
            "ember_streaming_records_processed",
            "Records of the completed batches.", labels=labels)
        processed.add_metric(app, snap.processed_records)
        yield processed

        active = GaugeMetricFamily(
            "ember_streaming_receiver_active", "1 while a receiver runs, 0 once it stopped.",
            labels=[*labels, "stream_id", "stream_name"])
        for stream_id, info in sorted(snap.receivers.items()):
            active.add_metric([snap.app_id, str(stream_id), info.name], 1.0 if info.active else 0.0)
        yield active

        for name, hist, text in (
            ("ember_streaming_processing_delay_seconds", snap.processing_hist,
             "Processing time of each batch (its first job's start to its last job's end)."),
            ("ember_streaming_scheduling_delay_seconds", snap.scheduling_hist,
             "Time each batch waited in the queue for earlier batches."),
            ("ember_streaming_total_delay_seconds", snap.total_hist,
             "From each batch's time to the end of its processing."),
        ):
            family = HistogramMetricFamily(name, text, labels=labels)
            buckets, total = _buckets(hist)
            family.add_metric(app, buckets, total)
            yield family


def make_registry(snapshot: Callable[[], Snapshot]) -> CollectorRegistry:
    """A new registry holding only a :class:`StreamingCollector` over ``snapshot``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StreamingCollector(snapshot))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry``."""
    return generate_latest(registry)
