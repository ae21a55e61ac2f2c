"""Every program in examples/ runs to its end, by itself, and prints what it should."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# example file -> (arguments, patterns its output must contain, each a regular expression)
EXPECTED: dict[str, tuple[list[str], list[str]]] = {
    "wordcount.py": ([], [r"^\s+3\s+to$", r"^\s+2\s+be$"]),
    # the guide's quick example, with its demo server (tests/docs/test_network_wordcount_example.py
    # tests it further)
    "network_wordcount.py": ([], [r"^Time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r"^\('to', \d+\)$"]),
    # Spark's MQTTWordCount, with a demo broker (needs mosquitto; the plugin ember-mqtt)
    "mqtt_wordcount.py": (
        ["--demo"], [r"^Time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r"^\('to', \d+\)$"],
    ),
    # Spark's ZeroMQWordCount, with a demo publisher (the plugin ember-zeromq)
    "zeromq_wordcount.py": (
        ["--demo"], [r"^Time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r"^\('to', \d+\)$"],
    ),
    # Spark's TwitterPopularTags, against a local X API v2 demo server (the plugin ember-twitter)
    "twitter_popular_tags.py": (
        ["--demo"],
        [r"^Popular topics in last 4 seconds \(\d+ total\):$",
         r"^Popular topics in last 2 seconds \(\d+ total\):$", r"^#ember \(\d+ tweets\)$"],
    ),
    "queue_stream.py": (
        ["--batches", "3", "--interval", "0.3"],
        [r"^Time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r"^\(0, 100\)$", r"^\(9, 100\)$"],
    ),
    "custom_receiver.py": (["--interval", "0.3"], [r"^total: \{'ERROR': 3, 'INFO': 20, 'WARN': 7\}$"]),
    "text_files_wordcount.py": (
        ["--demo", "--interval", "0.3"],
        [r"^Time: ", r"^\('the', 2\)$", r"^\('sleeps', 1\)$"],
    ),
    # updateStateByKey over the demo server's text (tests/docs/test_state_examples.py tests
    # it and the recoverable one further)
    "stateful_network_wordcount.py": (
        [], [r"^Time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r"^\('hello', \d+\)$", r"^\('to', \d+\)$"],
    ),
    "recoverable_network_wordcount.py": (
        [], [r"^Creating new context$", r"^Counts at time \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[.*\('to', \d+\)"],
    ),
}
HEADER = "-------------------------------------------"


def run_example(name: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=cwd, env=env,
    )


def test_every_example_is_covered_here():
    # _demo.py is the examples' shared demo kit, not an example
    examples = [p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")]
    assert sorted(examples) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_to_its_end_and_prints_what_it_should(name, tmp_path):
    args, patterns = EXPECTED[name]
    result = run_example(name, args, tmp_path)
    assert result.returncode == 0, f"{name} exited {result.returncode}:\n{result.stderr}"
    for pattern in patterns:
        assert re.search(pattern, result.stdout, re.M), (
            f"{name}'s output lacks {pattern!r}:\n{result.stdout}"
        )
    assert "Traceback" not in result.stderr, result.stderr


def test_queue_stream_prints_one_pprint_block_per_batch(tmp_path):
    result = run_example("queue_stream.py", ["--batches", "3", "--interval", "0.3"], tmp_path)
    assert result.returncode == 0, result.stderr
    blocks = [sorted(line for line in block.splitlines() if line.startswith("("))
              for block in result.stdout.split(HEADER + "\nTime: ")[1:]]
    # A batch generated while the program was stopping runs too (a graceful stop): it comes
    # after the queue ran dry, so it is empty.
    assert blocks[:3] == [[f"({d}, 100)" for d in range(10)]] * 3
    assert all(block == [] for block in blocks[3:]), blocks


def test_text_files_wordcount_counts_each_file_of_a_directory_in_its_own_batch(tmp_path):
    (tmp_path / "a.txt").write_text("red green red\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("blue\nblue blue\n", encoding="utf-8")
    (tmp_path / ".hidden").write_text("never counted\n", encoding="utf-8")
    result = run_example("text_files_wordcount.py", [str(tmp_path), "--interval", "0.3"],
                         tmp_path)
    assert result.returncode == 0, result.stderr
    blocks = [sorted(line for line in block.splitlines() if line.startswith("("))
              for block in result.stdout.split(HEADER + "\nTime: ")[1:]]
    assert blocks[:2] == [["('green', 1)", "('red', 2)"], ["('blue', 3)"]]
    assert all(block == [] for block in blocks[2:]), blocks  # see the queue_stream test


def test_text_files_wordcount_needs_a_directory_or_demo(tmp_path):
    result = run_example("text_files_wordcount.py", [], tmp_path)
    assert result.returncode == 2 and "give a DIRECTORY or --demo" in result.stderr
