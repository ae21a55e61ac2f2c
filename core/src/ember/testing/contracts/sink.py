"""The sink contract: what every ``ember.sinks`` plugin must do.

Subclass :class:`SinkContract` and provide two fixtures, ``sink_factory`` and ``read_batch``::

    class TestMySink(SinkContract):
        @pytest.fixture
        def sink_factory(self):
            return MySink                    # called as sink_factory(prefix, suffix)

        @pytest.fixture
        def read_batch(self, sink_context):
            def read(path):
                return sink_context.textFile(path).collect() if os.path.exists(path) else None
            return read

Every test runs once per executor of the ``ember_master`` fixture (``inline`` and
``local[2]``): the batches it writes are RDDs of a context on that executor
(``sink_context``).

The contract speaks of a batch's *location*: ``batch_path(prefix, batch_time_ms, suffix)``,
which is ``prefix-TIME_IN_MS[.suffix]`` (:func:`ember.sinks.batch_path`). A file sink writes
the batch there; any other sink must make the batch readable by ``read_batch`` under that
name (a ``foreach`` test function, for one, stores it under that key).

Capability fixtures (override when the default does not describe your sink):

- ``delivery`` (default :attr:`Delivery.IDEMPOTENT_PER_BATCH_TIME`): the guarantee the sink
  gives; the sink must declare exactly this one. With ``IDEMPOTENT_PER_BATCH_TIME`` a batch
  time written again replaces the earlier write; otherwise the rewrite must at least not be
  lost.
- ``writes_files`` (default ``True``): the sink writes each batch as a file or directory at
  its location on the local file system; the contract then also checks the directory listing
  (``_SUCCESS`` marker, nothing half-written visible, no temporary files left behind).
- ``round_trips_records`` (default ``True``): ``read_batch`` gives back records equal to the
  written ones, types included; when ``False`` it gives back ``str(record)`` of each record
  (text sinks).
- ``preserves_order`` (default ``True``): records come back in the RDD's order (partition by
  partition); when ``False`` they are compared as multisets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import cloudpickle
import pytest

from ember.plugins import api_version_fits
from ember.sinks import Delivery, Sink, batch_path
from ember.testing.contracts.base import ContractTests

__all__ = ["SinkContract"]

#: A batch time (ms since the epoch) in the range real batches have.
T0 = 1_700_000_000_000
#: The message of the error the contract's failing jobs raise.
FAILURE = "sink contract: this task fails on purpose, midway through the batch"

# Records every sink must write faithfully: unicode beyond ASCII and the BMP, empty and
# blank strings, numbers, None, nested containers. None of their str() holds a line break.
AWKWARD_RECORDS: list[Any] = [
    "héllo wörld ✓ ß ∑ 日本語",
    "clef \U0001d11e emoji \U0001f600",
    "",
    "  leading and trailing spaces  ",
    "tab\tseparated",
    0,
    -7,
    2**100 + 1,
    1.5,
    None,
    True,
    ("key", 1),
    ["a", ["nested", ("tuple",)]],
    {"k": "v", "n": [1, 2]},
]
# Records whose str() holds a line break: sinks that round-trip records must keep them whole.
MULTILINE_RECORDS: list[Any] = [
    "line one\nline two",
    "windows\r\nline end",
    "ends with a newline\n",
    "\n",
    ("pair", "with\nnewline"),
]


def _fail_in_last_partition(record: int) -> int:
    if record == 150:
        raise RuntimeError(FAILURE)
    return record


def _entries(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


class SinkContract(ContractTests):
    """The rules of :class:`ember.sinks.Sink`, as tests.

    Required fixtures: ``sink_factory``, ``read_batch``. Capability fixtures: ``delivery``,
    ``writes_files``, ``round_trips_records``, ``preserves_order``. Provided fixtures a
    subclass may use: ``sink_context`` (the running context), ``output_dir`` (where the
    contract's prefixes point).
    """

    __ember_contract__: ClassVar[bool] = True

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def sink_factory(self) -> Callable[..., Sink]:
        """Return a function building the sink under test: ``make(prefix, suffix=None)``.

        ``prefix`` is a ``str`` path under a temporary directory and ``suffix`` ``None`` or a
        short string such as ``"txt"``; the sink must write batch ``t`` where ``read_batch``
        finds it as ``batch_path(prefix, t, suffix)``. Build it exactly as an output operation
        does, e.g. ``return MySink`` (the class, called with ``prefix=`` and ``suffix=``).
        """
        raise NotImplementedError(
            "a SinkContract subclass must define the `sink_factory` fixture, returning a "
            "function of (prefix, suffix=None) that builds the sink under test "
            "(e.g. `return MySink`)"
        )

    @pytest.fixture
    def read_batch(self) -> Callable[[str], list[Any] | None]:
        """Return a function reading back one batch: ``read(location) -> list | None``.

        ``location`` is ``batch_path(prefix, t, suffix)``. It returns the records written
        there as a list (``[]`` for an empty batch), or ``None`` when nothing was written
        there. It is called from other threads while writes are going on, so it must be
        thread-safe; it may use ``sink_context`` (e.g. ``sink_context.pickleFile(location)``).
        """
        raise NotImplementedError(
            "a SinkContract subclass must define the `read_batch` fixture, returning a "
            "function of (location) that returns the records written there, or None"
        )

    @pytest.fixture
    def delivery(self) -> Delivery:
        """Return the delivery guarantee the sink gives (default idempotent per batch time).

        The sink's ``delivery`` attribute must equal it. Override it for a sink that cannot
        replace a batch, e.g. ``return Delivery.AT_LEAST_ONCE``.
        """
        return Delivery.IDEMPOTENT_PER_BATCH_TIME

    @pytest.fixture
    def writes_files(self) -> bool:
        """Return whether the sink writes each batch as a file or directory at its location
        on the local file system (default ``True``)."""
        return True

    @pytest.fixture
    def round_trips_records(self) -> bool:
        """Return whether ``read_batch`` gives back the records themselves, types included
        (default ``True``); ``False`` means it gives back ``str(record)`` of each."""
        return True

    @pytest.fixture
    def preserves_order(self) -> bool:
        """Return whether records come back in the RDD's order (default ``True``)."""
        return True

    @pytest.fixture
    def sink_context(self, ember_master: str, ember_context: Any) -> Any:
        """The running :class:`ember.Context` the contract's batches are RDDs of, once per
        executor of ``ember_master``."""
        return ember_context

    @pytest.fixture
    def output_dir(self, tmp_path: Path) -> Path:
        """The directory (not yet created) the contract's prefixes point into."""
        return tmp_path / "sink-output"

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _expected(records: list[Any], round_trips_records: bool) -> list[Any]:
        return list(records) if round_trips_records else [str(r) for r in records]

    @staticmethod
    def _same(got: Any, want: list[Any], preserves_order: bool) -> bool:
        if not isinstance(got, list):
            return False
        if preserves_order:
            return got == want
        return sorted(got, key=repr) == sorted(want, key=repr)

    # ------------------------------------------------------------------ declarations

    def test_sink_is_an_ember_sink(self, sink_factory: Callable[..., Sink],
                                   output_dir: Path) -> None:
        assert isinstance(sink_factory(str(output_dir / "batch")), Sink)

    def test_declares_a_name_an_api_version_this_core_accepts_and_its_delivery(
        self, sink_factory: Callable[..., Sink], output_dir: Path, delivery: Delivery
    ) -> None:
        sink = sink_factory(str(output_dir / "batch"))
        assert isinstance(sink.name, str) and sink.name, "a sink declares its entry-point name"
        assert sink.name == sink.name.strip().lower(), "names are lowercase"
        assert api_version_fits(sink.api_version), (
            f"api_version {sink.api_version!r} does not fit this ember-core"
        )
        assert Delivery(sink.delivery) is delivery, (
            f"the sink declares delivery {sink.delivery!r}; its tests say {delivery!r}"
        )

    def test_building_a_sink_opens_nothing_and_writes_nothing(
        self, sink_factory: Callable[..., Sink], output_dir: Path, tmp_path: Path
    ) -> None:
        before_files = _entries(tmp_path)
        before_threads = set(threading.enumerate())
        sink_factory(str(output_dir / "nested" / "batch"), "txt")
        new_threads = [t for t in threading.enumerate()
                       if t not in before_threads and t.is_alive()]
        assert not new_threads, f"building the sink started threads: {new_threads}"
        assert _entries(tmp_path) == before_files, "building the sink created files"
        assert not output_dir.exists(), "building the sink created its output directory"

    def test_sink_survives_pickling_with_its_configuration(
        self, sink_factory: Callable[..., Sink], output_dir: Path
    ) -> None:
        sink = sink_factory(str(output_dir / "batch"), "txt")
        copy = cloudpickle.loads(cloudpickle.dumps(sink))  # how ember ships and checkpoints it
        assert type(copy) is type(sink)
        assert copy.delivery == sink.delivery
        assert copy.describe() == sink.describe()

    def test_describe_is_one_short_line(self, sink_factory: Callable[..., Sink],
                                        output_dir: Path) -> None:
        text = sink_factory(str(output_dir / "batch")).describe()
        assert isinstance(text, str) and text.strip()
        assert "\n" not in text and len(text) <= 300

    # ------------------------------------------------------------------ writing

    def test_written_batch_reads_back_exactly_its_records(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, round_trips_records: bool, preserves_order: bool
    ) -> None:
        prefix = str(output_dir / "batch")
        records = [("word", i) for i in range(100)]
        sink_factory(prefix).write_batch(sink_context.parallelize(records, 3), T0)
        got = read_batch(batch_path(prefix, T0))
        assert self._same(got, self._expected(records, round_trips_records), preserves_order), (
            f"read back {got!r:.300}"
        )

    def test_batch_is_written_at_prefix_dash_time_in_ms_dot_suffix(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, writes_files: bool, round_trips_records: bool,
        preserves_order: bool
    ) -> None:
        prefix = str(output_dir / "words")
        t1, t2 = T0 + 1000, T0 + 2000
        sink_factory(prefix).write_batch(sink_context.parallelize(["a", "b"], 2), t1)
        sink_factory(prefix, "txt").write_batch(sink_context.parallelize(["c"], 1), t2)
        assert self._same(read_batch(f"{prefix}-{t1}"),
                          self._expected(["a", "b"], round_trips_records), preserves_order)
        assert self._same(read_batch(f"{prefix}-{t2}.txt"),
                          self._expected(["c"], round_trips_records), preserves_order)
        for elsewhere in (f"{prefix}-{t2}", f"{prefix}-{t1}.txt", f"{prefix}-{t1 + 1}",
                          f"{prefix}{t1}", f"{prefix}-{t1 // 1000}"):
            assert read_batch(elsewhere) is None, f"something was written at {elsewhere}"
        if writes_files:
            visible = [e for e in _entries(output_dir) if not e.startswith((".", "_"))]
            assert visible == [f"words-{t1}", f"words-{t2}.txt"]

    def test_missing_parent_directories_are_created(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, round_trips_records: bool
    ) -> None:
        prefix = str(output_dir / "does" / "not" / "exist" / "yet")
        sink_factory(prefix).write_batch(sink_context.parallelize([1]), T0)
        assert read_batch(batch_path(prefix, T0)) == self._expected([1], round_trips_records)

    @pytest.mark.parametrize("partitions", [0, 1, 3], ids=lambda n: f"{n}-partitions")
    def test_empty_batch_is_written_as_an_empty_batch(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, partitions: int
    ) -> None:
        prefix = str(output_dir / "empty")
        rdd = sink_context.emptyRDD() if partitions == 0 else sink_context.parallelize(
            [], partitions)
        sink_factory(prefix).write_batch(rdd, T0)
        assert read_batch(batch_path(prefix, T0)) == [], (
            "an empty batch is written (as in Spark), and reads back as no records"
        )

    def test_awkward_records_are_written_faithfully(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, round_trips_records: bool, preserves_order: bool
    ) -> None:
        records = list(AWKWARD_RECORDS) + (list(MULTILINE_RECORDS) if round_trips_records else [])
        prefix = str(output_dir / "awkward")
        sink_factory(prefix).write_batch(sink_context.parallelize(records, 3), T0)
        got = read_batch(batch_path(prefix, T0))
        want = self._expected(records, round_trips_records)
        assert self._same(got, want, preserves_order), f"wrote {want!r}, read back {got!r}"
        if round_trips_records:
            assert [type(r) for r in got] == [type(r) for r in records], "types changed"

    def test_many_partitions_and_records_are_all_written(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, round_trips_records: bool, preserves_order: bool
    ) -> None:
        records = list(range(20_000))
        prefix = str(output_dir / "many")
        sink_factory(prefix).write_batch(sink_context.parallelize(records, 8), T0)
        got = read_batch(batch_path(prefix, T0))
        assert self._same(got, self._expected(records, round_trips_records), preserves_order)

    # ------------------------------------------------------------------ rewriting

    def test_rewriting_a_batch_time_replaces_it_when_idempotent(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, delivery: Delivery, round_trips_records: bool,
        preserves_order: bool
    ) -> None:
        prefix = str(output_dir / "again")
        first = [("first", i) for i in range(10)]
        second = [("second", i) for i in range(7)]
        sink = sink_factory(prefix)
        sink.write_batch(sink_context.parallelize(first, 2), T0)
        sink.write_batch(sink_context.parallelize(second, 3), T0)
        got = read_batch(batch_path(prefix, T0))
        want = self._expected(second, round_trips_records)
        if delivery is Delivery.IDEMPOTENT_PER_BATCH_TIME:
            assert self._same(got, want, preserves_order), (
                f"the rewrite of a batch time must replace it exactly; read back {got!r:.300}"
            )
        else:
            assert isinstance(got, list) and all(r in got for r in want), (
                f"the rewrite of a batch time was lost; read back {got!r:.300}"
            )

    def test_rewriting_one_batch_time_leaves_other_batches_untouched(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, round_trips_records: bool, preserves_order: bool
    ) -> None:
        prefix = str(output_dir / "others")
        sink = sink_factory(prefix)
        for k in range(3):
            sink.write_batch(sink_context.parallelize([f"batch {k}"]), T0 + 1000 * k)
        sink.write_batch(sink_context.parallelize(["batch 1 again"]), T0 + 1000)
        for k in (0, 2):
            assert self._same(read_batch(batch_path(prefix, T0 + 1000 * k)),
                              self._expected([f"batch {k}"], round_trips_records),
                              preserves_order)

    # ------------------------------------------------------------------ failures

    def test_a_write_whose_job_fails_midway_raises_and_leaves_nothing_readable(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, writes_files: bool
    ) -> None:
        prefix = str(output_dir / "failed")
        rdd = sink_context.parallelize(range(200), 4).map(_fail_in_last_partition)
        with pytest.raises(Exception, match="fails on purpose"):
            sink_factory(prefix).write_batch(rdd, T0)
        assert read_batch(batch_path(prefix, T0)) is None, "a failed batch left output"
        if writes_files:
            assert not os.path.exists(batch_path(prefix, T0))
            assert _entries(output_dir) == [], (
                f"a failed batch left files behind: {_entries(output_dir)}"
            )

    def test_a_failed_rewrite_leaves_the_earlier_batch_intact(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, round_trips_records: bool, preserves_order: bool
    ) -> None:
        prefix = str(output_dir / "kept")
        sink = sink_factory(prefix)
        earlier = [("earlier", i) for i in range(50)]
        sink.write_batch(sink_context.parallelize(earlier, 2), T0)
        with pytest.raises(Exception, match="fails on purpose"):
            sink.write_batch(sink_context.parallelize(range(200), 4).map(_fail_in_last_partition),
                             T0)
        assert self._same(read_batch(batch_path(prefix, T0)),
                          self._expected(earlier, round_trips_records), preserves_order)

    def test_no_temporary_files_are_left_behind(
        self, sink_factory: Callable[..., Sink], sink_context: Any, output_dir: Path,
        writes_files: bool
    ) -> None:
        prefix = str(output_dir / "tidy")
        sink = sink_factory(prefix, "out")
        sink.write_batch(sink_context.parallelize(range(10), 2), T0)
        sink.write_batch(sink_context.parallelize(range(5), 2), T0)  # a rewrite
        with pytest.raises(Exception, match="fails on purpose"):
            sink.write_batch(sink_context.parallelize(range(200), 4).map(_fail_in_last_partition),
                             T0 + 1000)
        expected = [f"tidy-{T0}.out"] if writes_files else []
        assert _entries(output_dir) == expected

    # ------------------------------------------------------------------ threads

    def test_write_batch_works_from_another_thread(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, round_trips_records: bool, preserves_order: bool
    ) -> None:
        prefix = str(output_dir / "threaded")
        sink = sink_factory(prefix)  # built in one thread, written from another (a job thread)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(sink.write_batch, sink_context.parallelize(["x", "y"], 2), T0).result()
        assert self._same(read_batch(batch_path(prefix, T0)),
                          self._expected(["x", "y"], round_trips_records), preserves_order)

    def test_batches_written_concurrently_are_each_complete(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, round_trips_records: bool, preserves_order: bool
    ) -> None:
        # ember.streaming.concurrentJobs > 1 runs the jobs of several batches at once.
        prefix = str(output_dir / "concurrent")
        sink = sink_factory(prefix)
        batches = {T0 + 1000 * k: [(k, i) for i in range(300)] for k in range(4)}
        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(sink.write_batch, sink_context.parallelize(r, 2), t)
                           for t, r in batches.items()]:
                future.result()
        for t, records in batches.items():
            assert self._same(read_batch(batch_path(prefix, t)),
                              self._expected(records, round_trips_records), preserves_order)

    def test_a_concurrent_reader_never_sees_a_half_written_batch(
        self, sink_factory: Callable[..., Sink], read_batch: Callable[[str], Any],
        sink_context: Any, output_dir: Path, writes_files: bool, round_trips_records: bool,
        preserves_order: bool
    ) -> None:
        prefix = str(output_dir / "watched")
        batches = {T0 + 1000 * k: [(k, i) for i in range(2000)] for k in range(5)}
        wanted = {t: self._expected(r, round_trips_records) for t, r in batches.items()}
        done = threading.Event()
        problems: list[str] = []
        seen_complete: set[int] = set()
        scans = 0

        def observe_once() -> None:
            if writes_files:
                for name in _entries(output_dir):
                    if name.startswith((".", "_")):
                        continue  # hidden: a batch being built, not yet a batch
                    if not os.path.exists(os.path.join(output_dir, name, "_SUCCESS")):
                        problems.append(f"{name} was visible without its _SUCCESS marker")
            for t, want in wanted.items():
                if t in seen_complete:
                    continue
                got = read_batch(batch_path(prefix, t))
                if got is None:
                    continue
                if self._same(got, want, preserves_order):
                    seen_complete.add(t)
                else:
                    problems.append(f"batch {t} was readable with {len(got)} of "
                                    f"{len(want)} records")

        def observer() -> None:
            nonlocal scans
            try:
                while not done.is_set() and not problems:
                    observe_once()
                    scans += 1
            except BaseException as exc:  # reported by the test, not lost in the thread
                problems.append(f"the observer failed: {exc!r}")

        thread = threading.Thread(target=observer, name="sink-contract-observer")
        thread.start()
        try:
            sink = sink_factory(prefix)
            for t, records in batches.items():
                sink.write_batch(sink_context.parallelize(records, 4), t)
        finally:
            done.set()
            thread.join(60)
        assert not thread.is_alive(), "the observer did not stop"
        assert scans >= 1, "the observer never looked"
        observe_once()  # everything is complete once the writes returned
        assert not problems, "; ".join(problems[:5])
        assert seen_complete == set(batches)
