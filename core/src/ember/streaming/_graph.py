"""The DStream graph: the input and output streams of one StreamingContext."""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ember.streaming._dstreams import InputDStream, Job, OutputDStream

__all__ = ["DStreamGraph"]


class DStreamGraph:
    """Holds the streams; generates each batch's jobs and forgets old RDDs."""

    def __init__(self, batch_ms: int) -> None:
        self.batch_ms = batch_ms
        self.inputs: list[InputDStream] = []
        self.outputs: list[OutputDStream] = []
        self.zero_ms: int | None = None
        self.remember_ms: int = 0
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def streams(self) -> list:
        """Every stream of the graph, parents included."""
        out: dict[int, object] = {}
        stack = list(self.outputs) + list(self.inputs)
        while stack:
            s = stack.pop()
            if id(s) not in out:
                out[id(s)] = s
                stack.extend(s._parents)
        return list(out.values())

    def new_stream_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def add_input(self, stream: InputDStream) -> None:
        with self._lock:
            self.inputs.append(stream)

    def add_output(self, stream: OutputDStream) -> int:
        with self._lock:
            self.outputs.append(stream)
            return len(self.outputs) - 1

    def start(self, zero_ms: int) -> None:
        """Initialize every stream with the zero time and settle remember durations."""
        self.zero_ms = zero_ms
        for out in self.outputs:
            out._initialize(zero_ms)
        for out in self.outputs:
            out._remember(self.remember_ms)
        for out in self.outputs:
            out._validate_at_start()

    def generate_jobs(self, time_ms: int) -> list[Job]:
        """The jobs of batch ``time_ms``: one per output operation that has an RDD then."""
        jobs = []
        for out in self.outputs:
            job = out._generate_job(time_ms)
            if job is not None:
                jobs.append(job)
        return jobs

    def clear_metadata(self, time_ms: int) -> None:
        """Forget the RDDs every stream no longer needs after batch ``time_ms``."""
        for out in self.outputs:
            out._clear_metadata(time_ms)
