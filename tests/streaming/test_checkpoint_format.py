"""The metadata checkpoint on disk: atomic, stamped, checksummed, kept in generations.

Checkpoints are written by a real StreamingContext — a running word count over a file
stream (``textFileStream``) with ``updateStateByKey`` — driven by the manual clock
(``ember.streaming.clock=manual``), so every batch time is exact and nothing sleeps. The
tests then read, damage, edit or delete what it wrote, and check what ``read_checkpoint`` and
``StreamingContext.getOrCreate`` make of it.

The format (``ember.streaming._checkpoint``'s module docstring): a file
``checkpoint-<batch time, 20 digits>`` holding a magic line, a JSON header line (format,
ember, Python and cloudpickle versions, code fingerprint, payload checksum and length, data
checkpoint directories) and the pickled payload.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import pickle
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import ember
import pytest
from ember import Conf, Context, hookimpl
from ember.events import CheckpointInfo
from ember.streaming import StreamingContext
from ember.streaming._checkpoint import (
    MAGIC,
    Checkpoint,
    CheckpointError,
    CheckpointWriter,
    code_fingerprint,
    read_checkpoint,
)
from ember.testing import ManualClock, advance_batches

PREFIX = "checkpoint-"


# ---------------------------------------------------------------------- the application


def add_counts(new_values: list[int], state: int | None) -> int:
    """updateStateByKey's function of the word count: the running total of a word."""
    return sum(new_values) + (state or 0)


def add_counts_twice(new_values: list[int], state: int | None) -> int:
    """Another application's update function (counts every word twice)."""
    return 2 * sum(new_values) + (state or 0)


def word_pair(word: str) -> tuple[str, int]:
    """One occurrence of ``word``."""
    return (word, 1)


def save_state(out: str, time: Any, rdd: Any) -> None:
    """Write the whole state of one batch to ``out/state-<batch ms>.json`` (temp + rename)."""
    ms = round(time.timestamp() * 1000)
    path = os.path.join(out, f"state-{ms}.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(dict(rdd.collect()), f, sort_keys=True)
    os.replace(tmp, path)


def build_word_count(source: str, out: str, *, update: Callable[..., Any] = add_counts,
                     every: float | None = None,
                     conf: dict[str, str] | None = None) -> StreamingContext:
    """The running word count over the text files arriving in ``source``: 1 s batches on the
    manual clock, inline executor; the state every ``every`` seconds to the checkpoint
    directory (default: the engine's, every 10 s)."""
    c = Conf().set("ember.streaming.clock", "manual")
    for key, value in (conf or {}).items():
        c.set(key, value)
    ssc = StreamingContext(Context("inline", "checkpoint-format", c), 1.0)
    counts = ssc.textFileStream(source).flatMap(str.split).map(word_pair) \
        .updateStateByKey(update)
    if every is not None:
        counts.checkpoint(every)
    counts.foreachRDD(lambda time, rdd: save_state(out, time, rdd))
    return ssc


class App:
    """One application's directories and its setup function, and the running context."""

    def __init__(self, root: Path, **options: Any) -> None:
        self.source = root / "in"
        self.staging = root / "staging"
        self.out = root / "out"
        self.checkpoints = root / "checkpoints"
        for d in (self.source, self.staging, self.out):
            d.mkdir(parents=True, exist_ok=True)
        self.options = options
        self.setup_calls = 0
        self.ssc: StreamingContext | None = None
        self.dropped: list[str] = []

    def setup(self) -> StreamingContext:
        """The ``setupFunc`` given to getOrCreate."""
        self.setup_calls += 1
        return build_word_count(str(self.source), str(self.out), **self.options)

    def open(self, setup: Callable[[], StreamingContext] | None = None) -> StreamingContext:
        """getOrCreate from the checkpoint directory, and start."""
        self.ssc = StreamingContext.getOrCreate(str(self.checkpoints), setup or self.setup)
        self.ssc.start()
        return self.ssc

    def stop(self) -> None:
        """Stop the streaming context and its Context (not gracefully)."""
        if self.ssc is not None:
            self.ssc.stop(stopSparkContext=True)
            self.ssc = None

    def drop(self, name: str, text: str) -> None:
        """A text file arrives in the watched directory complete (written aside, renamed)."""
        staged = self.staging / name
        staged.write_text(text, encoding="utf-8")
        os.rename(staged, self.source / name)
        self.dropped.append(text)

    def expected(self) -> dict[str, int]:
        """The word counts over every file dropped so far."""
        counts: dict[str, int] = {}
        for text in self.dropped:
            for word in text.split():
                counts[word] = counts.get(word, 0) + 1
        return counts

    def state_at(self, batch_ms: int) -> dict[str, int]:
        """The state the output operation wrote for batch ``batch_ms``."""
        return json.loads((self.out / f"state-{batch_ms}.json").read_text(encoding="utf-8"))

    def files(self) -> list[Path]:
        """The checkpoint files, oldest first."""
        return sorted(self.checkpoints.glob(PREFIX + "[0-9]" * 20))

    def run(self, texts: list[str]) -> int:
        """Drop one file per text and run one batch after each; returns the last batch time."""
        assert self.ssc is not None
        for i, text in enumerate(texts):
            self.drop(f"f{len(self.dropped):03d}-{i}.txt", text)
            advance_batches(self.ssc, 1)
        self.ssc._raise_error()
        return self.ssc.clock.now_ms()


@pytest.fixture
def make_app(tmp_path: Path, ember_no_leaks) -> Iterator[Callable[..., App]]:
    """``make_app(**options)``: an :class:`App` in ``tmp_path``, stopped after the test."""
    made: list[App] = []

    def make(**options: Any) -> App:
        made.append(App(tmp_path, **options))
        return made[-1]

    yield make
    for application in made:
        application.stop()


@pytest.fixture
def app(make_app) -> App:
    """The word count with the default options."""
    return make_app()


def split_file(path: Path) -> tuple[dict[str, Any], bytes]:
    """A checkpoint file's header and payload, parsed by hand from the documented format."""
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    header_line, payload = data[len(MAGIC):].split(b"\n", 1)
    return json.loads(header_line), payload


def rewrite_header(path: Path, **changes: Any) -> None:
    """Edit fields of a checkpoint's header, keeping its payload (and checksum) intact."""
    header, payload = split_file(path)
    header.update(changes)
    path.write_bytes(MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload)


def data_dirs_on_disk(app: App) -> set[str]:
    """The data checkpoint (saved RDD) directories present under the checkpoint directory."""
    return {str(p) for p in app.checkpoints.glob("rdds/*/rdd-*")}


# ---------------------------------------------------------------------- the header


def test_a_checkpoint_is_a_magic_line_a_stamped_header_and_a_checksummed_payload(app):
    app.open()
    last = app.run(["to be or not to be"])
    app.stop()

    newest = app.files()[-1]
    assert newest.name == f"{PREFIX}{last:020d}"
    header, payload = split_file(newest)
    assert header["format"] == "1"
    assert header["ember"] == ember.__version__
    assert header["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert header["cloudpickle"] == cloudpickle.__version__
    assert header["fingerprint"] == code_fingerprint(app.setup)
    assert header["length"] == len(payload)
    assert header["checksum"] == hashlib.blake2b(payload, digest_size=16).hexdigest()
    assert header["time_ms"] == last
    cp = pickle.loads(payload)
    assert isinstance(cp, Checkpoint)
    assert (cp.time_ms, cp.batch_ms, cp.pending_ms, cp.last_completed_ms) == (last, 1000, (),
                                                                              last)
    assert ("ember.streaming.clock", "manual") in cp.conf


def make_setup(source: str, update: Callable[..., Any]) -> Callable[[], StreamingContext]:
    """A setup function closing over its directory and its update function."""
    def setup() -> StreamingContext:
        return build_word_count(source, "out", update=update)
    return setup


def test_the_code_fingerprint_follows_the_code_not_the_values():
    same = make_setup("a", add_counts)
    assert code_fingerprint(same) == code_fingerprint(make_setup("elsewhere", add_counts))
    # a function it calls by name, or gets from its enclosing function, is part of it
    assert code_fingerprint(same) != code_fingerprint(make_setup("a", add_counts_twice))
    assert code_fingerprint(build_word_count) != code_fingerprint(save_state)
    one = functools.partial(build_word_count, "a", "b")
    assert code_fingerprint(one) == code_fingerprint(functools.partial(build_word_count, "c"))
    assert code_fingerprint(one) != code_fingerprint(functools.partial(save_state, "a"))


def test_the_code_fingerprint_is_the_same_in_every_process(tmp_path):
    """Set literals compile to frozensets, whose order follows the per-process string hash
    seed: the fingerprint must not (a restarted driver would be refused as other code)."""
    import subprocess

    program = tmp_path / "app.py"
    program.write_text(
        "from ember.streaming._checkpoint import code_fingerprint\n"
        "def keep(word):\n"
        "    return word not in {'a', 'an', 'the', 'of', 'to', 'in', 'and', 'or'}\n"
        "print(code_fingerprint(keep))\n", encoding="utf-8")
    prints = set()
    for seed in ("1", "2", "3", "4"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        result = subprocess.run([sys.executable, str(program)], capture_output=True,
                                text=True, timeout=60, check=True, env=env)
        prints.add(result.stdout)
    assert len(prints) == 1, prints


# ---------------------------------------------------------------------- atomic writes


def test_an_interrupted_write_leaves_the_previous_generations_intact(app, monkeypatch, caplog):
    app.open()
    app.run(["a b", "b c", "c d"])
    before = {p.name: p.read_bytes() for p in app.files()}
    assert sorted(before) == [f"{PREFIX}{t:020d}" for t in (1000, 2000, 3000)]

    real_replace = os.replace

    def crash_before_rename(src: Any, dst: Any) -> None:
        if os.path.basename(os.fspath(dst)).startswith(PREFIX):
            raise OSError(28, "No space left on device (simulated)")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_before_rename)
    with caplog.at_level(logging.ERROR, logger="ember.streaming"):
        app.run(["d e"])  # batch 4000: both its checkpoints fail; the batch still runs
    monkeypatch.setattr(os, "replace", real_replace)

    assert "writing the checkpoint of batch 4000 ms failed" in caplog.text
    assert app.state_at(4000) == app.expected()  # the stream ran on
    after = {p.name: p.read_bytes() for p in app.files()}
    assert after == before, "no new, partial or changed generation is visible"
    assert not list(app.checkpoints.glob(".*.tmp")), "the temporary file is removed"
    assert read_checkpoint(str(app.checkpoints)).time_ms == 3000

    app.stop()  # recovery from the generation before the failed write loses nothing
    app.open()
    last = app.run(["e f"])
    assert app.state_at(last) == app.expected()


def test_a_temporary_file_left_by_a_crash_is_ignored_and_cleaned_up(app):
    app.open()
    app.run(["a"])
    app.stop()
    torn = app.checkpoints / f".{PREFIX}0123456789abcdef.tmp"
    torn.write_bytes(MAGIC + b'{"format": "1", "len')  # a write cut short by a crash
    os.utime(torn, (1, 1))

    assert read_checkpoint(str(app.checkpoints)).time_ms == 1000
    app.open()
    assert app.ssc._restored is not None
    app.run(["b"] * 6)  # enough checkpoints to rotate
    assert not torn.exists()
    assert app.state_at(app.ssc.clock.now_ms()) == app.expected()


# ---------------------------------------------------------------------- generations


@pytest.mark.parametrize("generations", [1, 3, None])
def test_only_the_newest_generations_are_kept(make_app, generations):
    conf = {} if generations is None else {
        "ember.streaming.checkpoint.generations": str(generations)}
    app = make_app(conf=conf)
    app.open()
    last = app.run([f"w{i}" for i in range(7)])
    app.stop()
    kept = 5 if generations is None else generations
    assert [p.name for p in app.files()] == [
        f"{PREFIX}{t:020d}" for t in range(last - (kept - 1) * 1000, last + 1, 1000)]


def test_rotation_deletes_the_data_checkpoints_no_kept_generation_refers_to(make_app):
    """The state is saved every batch; with two generations kept, old saved states go
    away with the last generation that refers to them, and every referenced one stays."""
    app = make_app(every=1.0, conf={"ember.streaming.checkpoint.generations": "2"})
    referenced: set[str] = set()

    class Headers:
        @hookimpl
        def ember_checkpoint_written(self, checkpoint: CheckpointInfo) -> None:
            referenced.update(split_file(Path(checkpoint.path))[0]["data_dirs"])

    ssc = StreamingContext.getOrCreate(str(app.checkpoints), app.setup)
    ssc.sparkContext._hooks.register(Headers())
    app.ssc = ssc
    ssc.start()
    app.run(["a b", "b c", "c", "d", "e e", "f"])
    app.stop()

    kept = set()
    for path in app.files():
        kept.update(split_file(path)[0]["data_dirs"])
    assert kept, "the newest generations refer to saved states"
    assert all(os.path.isdir(d) and os.listdir(d) for d in kept), "referenced ones are kept"
    assert data_dirs_on_disk(app) == kept, "the others are deleted"
    assert referenced - kept, "states saved earlier were referenced, then deleted"

    # the oldest generation kept can still be recovered from: its data is all there
    app.files()[-1].unlink()
    app.open()
    last = app.run(["g a"])
    assert app.state_at(last) == app.expected()


def test_a_batch_completing_after_later_batches_were_generated_keeps_its_saved_state(
        make_app):
    """Batch 2000's job waits while batches 3000..8000 are generated (and checkpointed,
    with later names). Its own completion checkpoint then has the oldest name and is rotated
    away at once — but the state it saved is still used by the graph and by every later
    checkpoint, so it must not be deleted with it."""
    app = make_app(every=2.0)
    release, waiting = threading.Event(), threading.Event()
    submitted: list[int] = []
    cond = threading.Condition()

    class Hold:
        @hookimpl
        def ember_batch_submitted(self, batch):
            with cond:
                submitted.append(batch.batch_time)
                cond.notify_all()

        @hookimpl
        def ember_output_operation_started(self, op):
            if op.batch_time == 2000:
                waiting.set()
                release.wait(30)

    try:
        ssc = StreamingContext.getOrCreate(str(app.checkpoints), app.setup)
        ssc.sparkContext._hooks.register(Hold())
        app.ssc = ssc
        ssc.start()
        app.run(["a b"])  # batch 1000
        app.drop("g2.txt", "b c")
        ssc.clock.set_time(2.0)
        assert waiting.wait(30)
        ssc.clock.set_time(8.0)
        with cond:
            assert cond.wait_for(lambda: 8000 in submitted, 30)
        release.set()
        ssc._await_batch(8000)
        ssc._raise_error()
        assert app.state_at(8000) == app.expected()
    finally:
        release.set()
        app.stop()

    for path in app.files():
        for d in split_file(path)[0]["data_dirs"]:
            assert os.path.isdir(d), f"{path.name} refers to {d}, which was deleted"
    app.open()
    last = app.run(["c d"])
    assert app.state_at(last) == app.expected()


# ---------------------------------------------------------------------- damage


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_a_payload_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x40
    path.write_bytes(bytes(data))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garble_the_header(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(MAGIC + b"{not json\n" + data.split(b"\n", 2)[2])


DAMAGES = [truncate, flip_a_payload_byte, empty, garble_the_header]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.__name__ for d in DAMAGES])
def test_a_damaged_newest_generation_is_skipped_with_a_warning(app, damage, caplog):
    app.open()
    app.run(["a b", "b c", "c d"])
    app.stop()
    newest = app.files()[-1]
    damage(newest)

    with caplog.at_level(logging.WARNING, logger="ember.streaming"):
        cp = read_checkpoint(str(app.checkpoints), code_fingerprint(app.setup))
    assert cp.time_ms == 2000, "the generation before the damaged one is used"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipping damaged checkpoint" in warnings[0].getMessage()
    assert newest.name in warnings[0].getMessage()

    app.open()  # recovery from the older generation re-runs batch 3000: nothing lost
    assert app.setup_calls == 1, "recovered, not set up again"
    last = app.run(["d e"])
    assert app.state_at(last) == app.expected()


def test_when_every_generation_is_damaged_the_error_names_the_remedy(app):
    app.open()
    app.run(["a", "b"])
    app.stop()
    for path in app.files():
        flip_a_payload_byte(path)
    with pytest.raises(CheckpointError, match=r"no checkpoint in .* is readable .*checksum "
                                              r"mismatch.*delete the directory to start over"):
        StreamingContext.getOrCreate(str(app.checkpoints), app.setup)
    assert app.setup_calls == 1
    shutil.rmtree(app.checkpoints)  # the remedy
    app.open()
    assert app.setup_calls == 2


# ---------------------------------------------------------------------- versions and code


@pytest.mark.parametrize(("field", "value"), [
    ("ember", "0.0.1"), ("python", "3.99"), ("cloudpickle", "0.1.0"), ("format", "0")])
def test_a_checkpoint_from_another_version_is_refused_with_the_remedy(app, field, value):
    app.open()
    app.run(["a"])
    app.stop()
    for path in app.files():
        rewrite_header(path, **{field: value})
    with pytest.raises(CheckpointError) as info:
        StreamingContext.getOrCreate(str(app.checkpoints), app.setup)
    message = str(info.value)
    assert f"{field} {value}" in message
    assert "cannot be restored across versions" in message
    assert "start with a new checkpoint directory" in message and "or delete" in message
    assert str(app.checkpoints) in message
    assert app.setup_calls == 1

    app.checkpoints = app.checkpoints.parent / "fresh-checkpoints"  # the remedy
    app.open()
    assert app.setup_calls == 2


def test_a_checkpoint_of_other_application_code_is_refused_with_the_remedy(app):
    app.open()
    app.run(["a b"])
    app.stop()

    def changed_setup() -> StreamingContext:
        return build_word_count(str(app.source), str(app.out), update=add_counts_twice)

    with pytest.raises(CheckpointError, match=r"written by other application code .*use a new "
                                              r"checkpoint directory, or delete .* to start "
                                              r"over"):
        StreamingContext.getOrCreate(str(app.checkpoints), changed_setup)
    assert app.setup_calls == 1


def test_the_same_code_run_again_resumes_from_its_checkpoint(app):
    app.open()
    app.run(["a b", "a"])
    app.stop()
    assert app.setup_calls == 1

    app.open()  # the same setup function: recovered, not set up again
    assert app.setup_calls == 1
    assert app.ssc._restored is not None and app.ssc._restored.time_ms == 2000
    assert app.ssc.clock.now_ms() >= 2000
    last = app.run(["b c"])
    assert last == 3000
    assert app.state_at(3000) == {"a": 2, "b": 2, "c": 1}


# ---------------------------------------------------------------------- unpicklable graphs


def test_a_graph_that_cannot_be_pickled_turns_checkpoints_off_once_and_runs_on(
        tmp_path, caplog, ember_no_leaks):
    sc = Context("inline", "queue")
    seen: list[list[int]] = []
    try:
        ssc = StreamingContext(sc, 1.0, clock=ManualClock())
        ssc.checkpoint(str(tmp_path / "cp"))
        ssc.queueStream([[1], [2], [3]]).map(lambda x: x * 10).foreachRDD(
            lambda rdd: seen.append(rdd.collect()))
        with caplog.at_level(logging.WARNING, logger="ember.streaming"):
            ssc.start()
            advance_batches(ssc, 3)
            ssc.stop(stopSparkContext=False)
    finally:
        sc.stop()
    assert seen == [[10], [20], [30]]
    off = [r for r in caplog.records if "metadata checkpoints are off" in r.getMessage()]
    assert len(off) == 1
    assert "cannot be recovered with getOrCreate" in off[0].getMessage()
    assert not list((tmp_path / "cp").glob(PREFIX + "*"))


# ---------------------------------------------------------------------- the writer alone


def test_the_writer_keeps_the_data_of_a_late_checkpoint_written_with_an_older_name(tmp_path):
    """Unit form of the late-completion case: generations 2..6 are on disk; checkpoint 1,
    written last, refers to a directory none of them names — it is rotated away at once,
    but its data stays (the graph still uses it)."""
    live = tmp_path / "rdds" / "rdd-7"
    live.mkdir(parents=True)
    (live / "part-00000").write_bytes(b"x")
    gone = tmp_path / "rdds" / "rdd-1"
    gone.mkdir()

    def cp(t: int, dirs: tuple[str, ...]) -> Checkpoint:
        return Checkpoint(t, [], 1000, 0, (), None, b"", {}, dirs, None)

    writer = CheckpointWriter(str(tmp_path), generations=5)
    writer.write(cp(500, (str(gone),)))
    for t in range(2000, 7000, 1000):
        writer.write(cp(t, ()))
    assert not gone.exists(), "data only a dropped generation referred to is deleted"
    writer.write(cp(1000, (str(live),)))
    assert live.is_dir()
    assert [p.name for p in sorted(tmp_path.glob(PREFIX + "*"))] == [
        f"{PREFIX}{t:020d}" for t in range(2000, 7000, 1000)]


# ---------------------------------------------------------------------- the hook


def test_hook_ember_checkpoint_written(app):
    events: list[tuple[CheckpointInfo, bool, int]] = []

    class Recorder:
        @hookimpl
        def ember_checkpoint_written(self, checkpoint: CheckpointInfo) -> None:
            path = Path(checkpoint.path)
            # when it fires, the file is in place and complete
            _header, payload = split_file(path)
            pending = pickle.loads(payload).pending_ms
            events.append((checkpoint, path.exists(), len(pending)))

    ssc = StreamingContext.getOrCreate(str(app.checkpoints), app.setup)
    ssc.sparkContext._hooks.register(Recorder())
    app.ssc = ssc
    ssc.start()
    app.run(["a", "b"])
    app.stop()

    def name(t: int) -> str:
        return str(app.checkpoints / f"{PREFIX}{t:020d}")

    # after each batch is generated (the batch pending), then after it completes
    assert events == [
        (CheckpointInfo(name(1000), 1000), True, 1), (CheckpointInfo(name(1000), 1000), True, 0),
        (CheckpointInfo(name(2000), 2000), True, 1), (CheckpointInfo(name(2000), 2000), True, 0),
    ]
