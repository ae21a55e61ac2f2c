"""The stateful and recoverable network word count examples do what their docstrings say.

``tests/docs/test_examples.py`` runs every example once; these tests look closer: the
running counts of ``stateful_network_wordcount.py`` only grow, and
``recoverable_network_wordcount.py`` run twice on one checkpoint directory recovers the
second time (and refuses a changed program).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ember.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HEADER = "-------------------------------------------"


def run(program: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, str(program), *args], capture_output=True,
                          text=True, timeout=60, check=False, cwd=cwd, env=env)


def test_stateful_network_wordcount_prints_running_counts_that_only_grow(tmp_path):
    result = run(EXAMPLES / "stateful_network_wordcount.py", [], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "metadata checkpoints are off" not in result.stderr, result.stderr
    blocks = [dict(re.findall(r"^\('(\w+)', (\d+)\)$", block, re.M))
              for block in result.stdout.split(HEADER + "\nTime: ")[1:]]
    assert len(blocks) >= 3, result.stdout
    # the initial state counts "hello" and "world" once before any line arrives
    assert all(int(b.get("hello", 0)) >= 1 for b in blocks)
    to = [int(b.get("to", 0)) for b in blocks]
    assert to == sorted(to), f"running counts never go down: {to}"
    assert to[-1] > to[0], f"and they grow as lines arrive: {to}"
    assert not list(tmp_path.iterdir()), "nothing is left in the current directory"


def test_recoverable_network_wordcount_recovers_on_its_second_run(tmp_path):
    port = str(free_port())
    args = ["--checkpoint", "ckpt", "--demo-port", port]
    program = EXAMPLES / "recoverable_network_wordcount.py"

    first = run(program, args, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Creating new context" in first.stdout
    first_lines = (tmp_path / "counts.txt").read_text(encoding="utf-8").splitlines()
    assert first_lines and all(line.startswith("Counts at time ") for line in first_lines)

    second = run(program, args, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Creating new context" not in second.stdout
    assert "Recovered from the checkpoint in ckpt" in second.stdout
    assert "Traceback" not in second.stderr and "restarting receiver" not in second.stderr, (
        second.stderr)
    lines = (tmp_path / "counts.txt").read_text(encoding="utf-8").splitlines()
    assert lines[: len(first_lines)] == first_lines, "the recovered context appends"
    later = lines[len(first_lines):]
    assert later, "the recovered context wrote counts"
    assert any("('to', " in line for line in later), "and its receiver received text again"
    times = [line[len("Counts at time "):len("Counts at time ") + 19] for line in lines]
    assert times == sorted(times) and len(set(times)) == len(times), (
        "each batch time once, in order: the recovered run continues where the first stopped")


def test_recoverable_network_wordcount_refuses_a_changed_program(tmp_path):
    port = str(free_port())
    args = ["--checkpoint", "ckpt", "--demo-port", port]
    original = EXAMPLES / "recoverable_network_wordcount.py"
    assert run(original, args, tmp_path).returncode == 0

    changed = tmp_path / "changed_wordcount.py"
    source = original.read_text(encoding="utf-8")
    assert 'line.split(" ")' in source
    changed.write_text(source.replace('line.split(" ")', "line.split()"), encoding="utf-8")
    (tmp_path / "_demo.py").write_bytes((EXAMPLES / "_demo.py").read_bytes())  # its demo kit
    result = run(changed, args, tmp_path)
    assert result.returncode != 0
    assert "CheckpointError" in result.stderr
    assert "written by other application code" in result.stderr
    assert "use a new checkpoint directory, or delete" in result.stderr


@pytest.mark.parametrize("name", ["stateful_network_wordcount.py",
                                  "recoverable_network_wordcount.py"])
def test_the_example_needs_both_a_host_and_a_port(name, tmp_path):
    result = run(EXAMPLES / name, ["localhost"], tmp_path)
    assert result.returncode == 2
    assert "give both a host name and a port" in result.stderr
