"""Recovery with ``StreamingContext.getOrCreate``, in one process, on the manual clock.

A running word count over a file stream (``textFileStream``) — with ``updateStateByKey``,
``mapWithState`` or an incremental ``reduceByKeyAndWindow`` (inverse function) — runs some
batches with a checkpoint directory; its context is stopped (or a crash is simulated, see
below); ``getOrCreate`` rebuilds it from the checkpoint; more files arrive; the state (or
window) written by the last batch must be exactly the counts over the right files.

The recovered context runs on a manual clock too (``ember.streaming.clock=manual`` is part of
the saved configuration) that starts at the checkpoint's batch time, so every batch time is
known and nothing sleeps.

A driver crash is simulated by copying the checkpoint directory aside at the moment of the
crash (from a hook, while a batch runs), stopping, and putting the copy back: what is on disk
is then exactly what a crash at that moment leaves. Real process kills are in
``test_recovery_kill.py``.
"""

from __future__ import annotations

import json
import operator
import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from ember import Conf, Context, hookimpl
from ember.receivers import Receiver
from ember.streaming import StateSpec, StreamingContext
from ember.testing import advance_batches

# ---------------------------------------------------------------------- the applications


#: Window and slide of the reduceByKeyAndWindow variant, in seconds.
WINDOW, SLIDE = 3.0, 1.0


def build(kind: str, source: str, out: str, master: str, every: float | None,
          initial: list[tuple[str, int]] | None = None) -> StreamingContext:
    """The word count of ``kind`` over the files arriving in ``source``: 1 s batches on the
    manual clock; each batch's pairs go to ``out/<batch ms>.json``; the state (or window) is
    saved to the checkpoint directory every ``every`` seconds (default: the engine's, 10 s);
    the state starts from the pairs ``initial`` (an RDD: ``initialRDD``, ``initialState``).

    Its functions are defined in here: cloudpickle then ships them by value, to worker
    processes (which cannot import this test module) and into the checkpoint.
    """

    def add_counts(new_values: list[int], state: int | None) -> int:
        return sum(new_values) + (state or 0)

    def running_count(word: str, one: int | None, state: Any) -> tuple[str, int]:
        total = (state.get() if state.exists() else 0) + (one or 0)
        state.update(total)
        return (word, total)

    def save(time: Any, rdd: Any) -> None:
        # a re-run of the same batch time replaces its file (temporary file, rename)
        ms = round(time.timestamp() * 1000)
        tmp = os.path.join(out, f".{ms}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(dict(rdd.collect()), f, sort_keys=True)
        os.replace(tmp, os.path.join(out, f"{ms}.json"))

    conf = Conf().set("ember.streaming.clock", "manual")
    ssc = StreamingContext(Context(master, f"recovery-{kind}", conf), 1.0)
    pairs = ssc.textFileStream(source).flatMap(str.split).map(lambda word: (word, 1))
    start = None if initial is None else ssc.sparkContext.parallelize(initial, 2)
    if kind == "updateStateByKey":
        result = stateful = pairs.updateStateByKey(add_counts, initialRDD=start)
    elif kind == "mapWithState":
        spec = StateSpec.function(running_count)
        mapped = pairs.mapWithState(spec if start is None else spec.initialState(start))
        result, stateful = mapped.stateSnapshots(), mapped  # its checkpoint() is the state's
    else:
        result = stateful = pairs.reduceByKeyAndWindow(
            operator.add, operator.sub, WINDOW, SLIDE, filterFunc=lambda kv: kv[1] > 0)
    if every is not None:
        stateful.checkpoint(every)
    result.foreachRDD(save)
    return ssc


KINDS = ["updateStateByKey", "mapWithState", "reduceByKeyAndWindow"]


class App:
    """One word count: its directories, setup function, running context and the files fed
    to each batch (which the expected output is computed from)."""

    def __init__(self, root: Path, kind: str, master: str = "inline",
                 every: float | None = None,
                 initial: list[tuple[str, int]] | None = None) -> None:
        self.kind, self.master, self.every, self.initial = kind, master, every, initial
        self.source, self.staging, self.out = root / "in", root / "staging", root / "out"
        self.checkpoints = root / "checkpoints"
        for d in (self.source, self.staging, self.out):
            d.mkdir(parents=True, exist_ok=True)
        self.batches: dict[int, list[str]] = {}
        self.paths: dict[int, list[Path]] = {}
        self.ssc: StreamingContext | None = None
        self.setup_calls = 0
        self.completed: list[int] = []
        self.hooks: list[Any] = []

    def setup(self) -> StreamingContext:
        """The ``setupFunc`` given to getOrCreate."""
        self.setup_calls += 1
        return build(self.kind, str(self.source), str(self.out), self.master, self.every,
                     self.initial)

    def open(self, *, down_until_ms: int | None = None) -> StreamingContext:
        """getOrCreate and start; with ``down_until_ms`` the clock is first moved there, as
        if the driver had been down until then."""
        ssc = StreamingContext.getOrCreate(str(self.checkpoints), self.setup)
        app = self

        class Completed:
            @hookimpl
            def ember_batch_completed(self, batch):
                app.completed.append(batch.batch_time)

        for hook in [Completed(), *self.hooks]:
            ssc.sparkContext._hooks.register(hook)
        if down_until_ms is not None:
            ssc.clock.set_time(down_until_ms / 1000)
        self.ssc = ssc
        ssc.start()
        return ssc

    def stop(self) -> None:
        """Stop the context (not gracefully) and its Context."""
        if self.ssc is not None:
            self.ssc.stop(stopSparkContext=True)
            self.ssc = None

    def drop(self, text: str, batch: int) -> None:
        """A file arrives (written aside, renamed in); the test says which batch takes it."""
        n = sum(len(v) for v in self.batches.values())
        staged = self.staging / f"f{n:03d}.txt"
        staged.write_text(text, encoding="utf-8")
        path = self.source / staged.name
        os.rename(staged, path)
        self.batches.setdefault(batch, []).append(text)
        self.paths.setdefault(batch, []).append(path)

    def advance(self, n: int = 1) -> int:
        """Run ``n`` batches; returns the time of the last."""
        assert self.ssc is not None
        advance_batches(self.ssc, n)
        self.ssc._raise_error()
        return self.ssc.clock.now_ms()

    def output(self, batch_ms: int) -> dict[str, int]:
        """What the output operation wrote for batch ``batch_ms``."""
        return json.loads((self.out / f"{batch_ms}.json").read_text(encoding="utf-8"))

    def expected(self, batch_ms: int) -> dict[str, int]:
        """The exact output of batch ``batch_ms``: the counts over every file fed to the
        batches up to it (over the window ending at it, for reduceByKeyAndWindow)."""
        low = batch_ms - WINDOW * 1000 if self.kind == "reduceByKeyAndWindow" else -1
        counts: dict[str, int] = dict(self.initial or [])
        for t, texts in self.batches.items():
            if low < t <= batch_ms:
                for text in texts:
                    for word in text.split():
                        counts[word] = counts.get(word, 0) + 1
        return counts


@pytest.fixture
def make_app(tmp_path: Path, ember_no_leaks) -> Iterator[Callable[..., App]]:
    """``make_app(kind, **options)``: an :class:`App` in ``tmp_path``, stopped afterwards."""
    made: list[App] = []

    def make(kind: str, **options: Any) -> App:
        made.append(App(tmp_path, kind, **options))
        return made[-1]

    yield make
    for app in made:
        app.stop()


def crash_snapshot(app: App, at_batch_ms: int) -> tuple[threading.Event, Path]:
    """A hook that copies the checkpoint directory aside when batch ``at_batch_ms`` starts
    processing (its generation checkpoint is written, its job has not run): the disk as a
    driver crash at that moment would leave it."""
    aside = app.checkpoints.parent / "crashed-checkpoints"
    taken = threading.Event()

    class Snapshot:
        @hookimpl
        def ember_batch_started(self, batch):
            if batch.batch_time == at_batch_ms and not taken.is_set():
                shutil.copytree(app.checkpoints, aside)
                taken.set()

    app.hooks.append(Snapshot())
    return taken, aside


def restore_crash(app: App, aside: Path) -> None:
    """Put the directory copied at the crash back, as the crash left it."""
    shutil.rmtree(app.checkpoints)
    shutil.copytree(aside, app.checkpoints)


# ---------------------------------------------------------------------- tests


@pytest.mark.parametrize("kind", KINDS)
def test_the_state_is_exact_after_a_stop_and_a_recovery(make_app, kind):
    app = make_app(kind)
    app.open()
    app.drop("to be or not to be", 1000)
    app.advance()
    app.drop("that is the question", 2000)
    app.advance()
    app.drop("to be is to do", 3000)
    assert app.advance() == 3000
    assert app.output(3000) == app.expected(3000)
    app.stop()

    app.drop("be quick", 4000)  # arrives while the driver is down: the next batch takes it
    app.open()
    assert app.setup_calls == 1, "recovered from the checkpoint, not set up again"
    assert app.ssc.clock.now_ms() == 3000, "the manual clock resumes at the checkpoint"
    app.advance()
    app.drop("or not", 5000)
    app.advance()
    app.drop("question the question", 6000)
    assert app.advance() == 6000
    for t in (4000, 5000, 6000):
        assert app.output(t) == app.expected(t), t
    assert app.completed == [1000, 2000, 3000, 4000, 5000, 6000], "no batch ran twice"

    app.stop()  # and once more: a recovered context recovers again
    app.open()
    app.drop("be", 7000)
    assert app.advance() == 7000
    assert app.output(7000) == app.expected(7000)


def test_recovery_on_worker_processes(make_app):
    app = make_app("updateStateByKey", master="local[2]", every=2.0)
    app.open()
    for t in (1000, 2000, 3000):
        app.drop(f"w{t} shared", t)
        app.advance()
    app.stop()
    app.open()
    app.drop("shared again", 4000)
    assert app.advance() == 4000
    assert app.output(4000) == app.expected(4000) == {
        "w1000": 1, "w2000": 1, "w3000": 1, "shared": 4, "again": 1}


@pytest.mark.parametrize("kind", KINDS)
def test_the_batch_running_when_the_driver_died_is_run_again(make_app, kind):
    app = make_app(kind, every=2.0)
    taken, aside = crash_snapshot(app, at_batch_ms=4000)
    app.open()
    for t in (1000, 2000, 3000, 4000):
        app.drop(f"word{t} common", t)
        app.advance()
    assert taken.is_set()
    app.stop()
    restore_crash(app, aside)  # the driver died while batch 4000 ran

    app.completed.clear()
    app.drop("after the crash", 5000)
    app.open()
    last = app.advance()
    assert last == 5000
    assert app.completed == [4000, 5000], "the incomplete batch first, with its own files"
    assert app.output(4000) == app.expected(4000)
    assert app.output(5000) == app.expected(5000)


@pytest.mark.parametrize("kind", KINDS)
def test_the_batches_missed_while_down_are_run_on_restart(make_app, kind):
    app = make_app(kind)
    app.open()
    app.drop("a b", 1000)
    app.advance()
    app.drop("b c", 2000)
    app.advance()
    app.stop()

    app.drop("c d", 3000)  # while down: taken by the first batch after the checkpoint
    app.completed.clear()
    app.open(down_until_ms=5500)  # back 3.5 batch intervals later
    app.ssc._await_batch(5000)
    assert app.completed == [3000, 4000, 5000], "each missed batch time, without waiting"
    app.drop("d e", 6000)
    assert app.advance() == 6000
    for t in (3000, 4000, 5000, 6000):
        assert app.output(t) == app.expected(t), t


def test_recovery_starts_from_the_saved_state_not_from_the_first_batch(make_app):
    """With the state saved every 2 batches, recovery recomputes only the batches since the
    last saved state: the files of older batches can be gone."""
    app = make_app("updateStateByKey", every=2.0)
    app.open()
    for t in range(1000, 6000, 1000):
        app.drop(f"w{t} common", t)
        app.advance()
    app.stop()
    for t in range(1000, 5000, 1000):  # batch 4000's state was saved: older files go away
        for path in app.paths[t]:
            path.unlink()

    app.open()
    app.drop("new common", 6000)
    assert app.advance() == 6000
    assert app.output(6000) == app.expected(6000)


def test_without_a_saved_state_recovery_reads_every_batch_again(make_app):
    """The counterpart: nothing saved yet (the default interval is 10 s), so recovery
    recomputes the state from the first batch — and needs its files."""
    app = make_app("updateStateByKey")
    app.open()
    for t in range(1000, 6000, 1000):
        app.drop(f"w{t} common", t)
        app.advance()
    app.stop()
    for path in app.paths[1000]:
        path.unlink()

    app.open()
    app.drop("new", 6000)
    app.ssc.clock.set_time(6.0)
    with pytest.raises(Exception, match=r"f000\.txt"):
        app.ssc._await_batch(6000)
        app.ssc._raise_error()


def test_get_or_create_without_a_setup_function_only_recovers(make_app):
    """PySpark's ``getOrCreate(checkpointDirectory, None)``: recover, or a clear error."""
    app = make_app("updateStateByKey")
    with pytest.raises(ValueError, match=r"no checkpoint in .* to recover from, and no "
                                         r"setupFunc"):
        StreamingContext.getOrCreate(str(app.checkpoints), None)

    app.open()
    app.drop("a b", 1000)
    app.advance()
    app.stop()
    ssc = StreamingContext.getOrCreate(str(app.checkpoints), None)
    app.ssc = ssc
    ssc.start()
    app.drop("b c", 2000)
    app.advance()
    assert app.output(2000) == app.expected(2000) == {"a": 1, "b": 2, "c": 1}
    app.stop()

    # it keeps the code fingerprint: other code is still refused afterwards
    from ember.streaming import CheckpointError

    def other_code() -> StreamingContext:
        return build("reduceByKeyAndWindow", str(app.source), str(app.out), "inline", None)

    with pytest.raises(CheckpointError, match="other application code"):
        StreamingContext.getOrCreate(str(app.checkpoints), other_code)


@pytest.mark.parametrize("kind", ["updateStateByKey", "mapWithState"])
def test_an_initial_state_rdd_is_saved_with_the_checkpoint(make_app, kind):
    """The initial state RDD is part of the graph: it is saved to the checkpoint directory
    and read back, so a recovery that recomputes the state from the first batch (nothing
    saved yet: 10 s by default) starts from it — after generations rotated, too."""
    app = make_app(kind, initial=[("to", 100), ("be", 10)])
    app.open()
    for t in range(1000, 8000, 1000):
        app.drop("to be", t)
        app.advance()
    assert app.output(7000) == app.expected(7000) == {"to": 107, "be": 17}
    app.stop()

    app.open()
    app.drop("to", 8000)
    assert app.advance() == 8000
    assert app.output(8000) == app.expected(8000) == {"to": 108, "be": 17}


def test_a_static_rdd_a_transform_joins_with_is_saved_with_the_checkpoint(tmp_path,
                                                                          ember_no_leaks):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    checkpoints = str(tmp_path / "checkpoints")
    colours = [("red", "warm"), ("blue", "cold")]

    def setup() -> StreamingContext:
        sc = Context("inline", "static-join", Conf().set("ember.streaming.clock", "manual"))
        ssc = StreamingContext(sc, 1.0)
        kinds = sc.parallelize(colours)

        def save(time: Any, rdd: Any) -> None:
            path = out / f"{round(time.timestamp() * 1000)}.json"
            path.write_text(json.dumps(sorted(rdd.collect())), encoding="utf-8")

        words = ssc.textFileStream(str(source)).flatMap(str.split).map(lambda w: (w, 1))
        words.transform(lambda rdd: rdd.join(kinds).map(lambda kv: (kv[1][1], kv[1][0]))) \
            .reduceByKey(operator.add).foreachRDD(save)
        return ssc

    ssc = StreamingContext.getOrCreate(checkpoints, setup)
    ssc.start()
    (source / "a.txt").write_text("red blue red green\n", encoding="utf-8")
    advance_batches(ssc, 1)
    ssc.stop()

    ssc = StreamingContext.getOrCreate(checkpoints, setup)
    try:
        ssc.start()
        (tmp_path / "b.txt").write_text("blue blue\n", encoding="utf-8")
        os.rename(tmp_path / "b.txt", source / "b.txt")
        advance_batches(ssc, 1)
        ssc._raise_error()
    finally:
        ssc.stop()
    assert json.loads((out / "1000.json").read_text()) == [["cold", 1], ["warm", 2]]
    assert json.loads((out / "2000.json").read_text()) == [["cold", 2]]


class Waiting(Receiver):
    """A receiver holding the runtime objects receivers typically make in ``__init__``."""

    def __init__(self) -> None:
        super().__init__()
        self.host = "example.org"
        self.lock = threading.Lock()
        self.rlock = threading.RLock()
        self.closing = threading.Event()
        self.closing.set()
        self.ready = threading.Condition()
        self.pending: queue.Queue[int] = queue.Queue(maxsize=3)
        self.pending.put(1)
        self.thread = threading.Thread(target=lambda: None)

    def onStart(self) -> None:
        self.closing.clear()

    def onStop(self) -> None:
        self.closing.set()


def test_a_recovered_receiver_gets_new_locks_events_and_queues():
    """A checkpoint keeps a receiver's configuration; its runtime objects come back new
    (a socket receiver calling ``self._closing.clear()`` in ``onStart`` must not fail)."""
    receiver = Waiting()
    receiver.lock.acquire()
    back = cloudpickle.loads(cloudpickle.dumps(receiver))
    assert back.host == "example.org"
    assert back.lock.acquire(blocking=False), "a new, unlocked lock"
    assert back.rlock.acquire(blocking=False)
    assert isinstance(back.closing, threading.Event) and not back.closing.is_set()
    assert isinstance(back.ready, threading.Condition)
    assert back.pending.empty() and back.pending.maxsize == 3
    assert back.thread is None and back._supervisor is None
    back.onStart()
