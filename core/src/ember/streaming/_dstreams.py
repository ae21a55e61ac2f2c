"""The internal kinds of DStream: input, transformed and output streams."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ember import wal
from ember.events import StreamInputInfo
from ember.rdd import RDD
from ember.streaming.dstream import DStream

if TYPE_CHECKING:
    from ember.receivers import Receiver
    from ember.sinks import Sink
    from ember.sources import PullSource
    from ember.streaming.context import StreamingContext

__all__ = [
    "InputDStream",
    "OutputDStream",
    "PullInputDStream",
    "ReceiverInputDStream",
    "TransformedDStream",
]

log = logging.getLogger("ember.streaming")


class InputDStream(DStream):
    """A stream fed from outside: one per source, at the batch interval."""

    def __init__(self, ssc: StreamingContext) -> None:
        super().__init__(ssc, [], ssc._batch_ms)
        ssc._graph.add_input(self)

    def _start(self) -> None:
        """Called when the streaming context starts."""

    def _stop(self) -> None:
        """Called when the streaming context stops."""

    def _describe(self) -> str:
        return type(self).__name__


class PullInputDStream(InputDStream):
    """The stream of a :class:`~ember.sources.PullSource`: each batch computed at its time."""

    def __init__(self, ssc: StreamingContext, source: PullSource) -> None:
        super().__init__(ssc)
        self.source = source

    def _start(self) -> None:
        self.source.start(self._ssc)

    def _stop(self) -> None:
        self.source.stop()

    def _clear_metadata(self, time_ms: int) -> None:
        super()._clear_metadata(time_ms)
        self.source.forget(time_ms - self._remember_ms)

    def _describe(self) -> str:
        return self.source.describe()

    def _compute(self, time_ms: int) -> RDD | None:
        rdd, count = self.source.compute(self._ssc, time_ms)
        self._ssc._scheduler.report_input(
            time_ms, StreamInputInfo(self.id, count or 0, {"Description": self._describe()})
        )
        return rdd


class ReceiverInputDStream(InputDStream):
    """The stream of a :class:`~ember.receivers.Receiver`: each batch is the blocks it stored
    since the previous batch, one partition per block."""

    def __init__(self, ssc: StreamingContext, receiver: Receiver) -> None:
        from ember.receivers import Receiver

        if not isinstance(receiver, Receiver):
            raise TypeError(
                f"receiverStream expects an ember.receivers.Receiver, got {type(receiver).__name__}"
            )
        if receiver._supervisor is not None or receiver._stream_id is not None:
            raise ValueError(
                f"receiver {receiver.name()} already feeds another stream: a receiver object "
                f"feeds one stream; create a new receiver for each receiverStream call"
            )
        super().__init__(ssc)
        self.receiver = receiver
        receiver._stream_id = self.id
        self.supervisor: Any = None

    def _describe(self) -> str:
        return f"receiver {self.receiver.name()}"

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["supervisor"] = None
        return state

    def _start(self) -> None:
        from ember.streaming._receiving import ReceiverSupervisor

        if self._zero_ms is None:  # not initialized by the graph: no output operation uses it
            log.warning(
                "input stream %d (receiver %s) is not used by any output operation: its "
                "receiver is not started", self.id, self.receiver.name(),
            )
            return
        scheduler = self._ssc._scheduler
        block_log = None
        if wal.is_enabled(self._ssc.sparkContext._conf):
            from ember.streaming._logged_blocks import open_block_log

            block_log = open_block_log(self._ssc, self.id, scheduler.tracker)
        self.supervisor = ReceiverSupervisor(self._ssc, self.receiver, self.id, scheduler.tracker,
                                             block_log)
        self.supervisor.start()

    def _validate_at_start(self) -> None:
        super()._validate_at_start()
        if wal.is_enabled(self._ssc.sparkContext._conf) and self._ssc._checkpoint_dir is None:
            raise ValueError(
                f"{wal.ENABLE_KEY} is on, but no checkpoint directory is set: the write-ahead "
                f"log of received data lives in it. Call ssc.checkpoint(directory) (or use "
                f"StreamingContext.getOrCreate) before start(), or turn the log off"
            )

    def _clear_metadata(self, time_ms: int) -> None:
        super()._clear_metadata(time_ms)
        scheduler = self._ssc._scheduler
        if scheduler is None:
            return
        scheduler.tracker.forget(self.id, time_ms - self._remember_ms)
        block_log = getattr(self.supervisor, "block_log", None)
        if block_log is not None and scheduler._writer is None:
            # no metadata checkpoints (the graph cannot be saved): nothing can be recovered,
            # so the log keeps only what the running batches need
            block_log.no_checkpoints(scheduler.tracker.snapshot(self.id))

    def _stop_receiving(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()

    def _compute(self, time_ms: int) -> RDD | None:
        from ember._engine.rdds import BlockRDD

        blocks = self._ssc._scheduler.tracker.allocate(self.id, time_ms)
        self._ssc._scheduler.report_input(
            time_ms,
            StreamInputInfo(self.id, sum(b.num_records for b in blocks),
                            {"Description": self._describe()}),
        )
        errors = getattr(self.receiver, "text_errors", "replace")
        return BlockRDD(self._ssc.sparkContext, blocks, errors)


class TransformedDStream(DStream):
    """``func(time_ms, [parent RDDs]) -> RDD`` at each of the parents' (common) batch times."""

    def __init__(self, parents: list[DStream], func: Callable[[int, list[RDD]], RDD],
                 what: str) -> None:
        slides = {p._slide_ms for p in parents}
        if len(slides) != 1:
            raise ValueError(
                f"{what}: the DStreams must have the same slide duration, got "
                f"{sorted(s / 1000 for s in slides)} s"
            )
        super().__init__(parents[0]._ssc, parents, parents[0]._slide_ms)
        self._func = func
        self._what = what

    def _compute(self, time_ms: int) -> RDD | None:
        rdds = []
        for parent in self._parents:
            rdd = parent._get_or_compute(time_ms)
            if rdd is None:
                raise RuntimeError(
                    f"{self._what}: could not generate the parent RDD of {parent!r} at "
                    f"time {time_ms} ms"
                )
            rdds.append(rdd)
        result = self._func(time_ms, rdds)
        if result is not None and not isinstance(result, RDD):
            raise TypeError(
                f"the function given to {self._what} must return an RDD, got "
                f"{type(result).__name__}: {result!r:.80}"
            )
        return result


@attrs.frozen
class Job:
    """One output operation of one batch: ``run()`` writes the batch through the sink."""

    time_ms: int
    output_id: int
    name: str
    description: str
    run: Callable[[], Any]


class OutputDStream(DStream):
    """An output operation: each batch of the parent goes to a sink."""

    def __init__(self, parent: DStream, sink: Sink, name: str, description: str) -> None:
        super().__init__(parent._ssc, [parent], parent._slide_ms)
        self.sink = sink
        self.name = name
        self.description = description
        self.output_id = parent._ssc._graph.add_output(self)

    def _compute(self, time_ms: int) -> RDD | None:
        return None

    def _generate_job(self, time_ms: int) -> Job | None:
        if not self._is_time_valid(time_ms):
            return None
        rdd = self._parents[0]._get_or_compute(time_ms)
        if rdd is None:
            return None
        sink = self.sink
        return Job(time_ms, self.output_id, self.name, self.description,
                   lambda: sink.write_batch(rdd, time_ms))
