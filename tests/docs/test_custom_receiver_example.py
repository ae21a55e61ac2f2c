"""examples/custom_receiver.py runs to its end by itself, promptly, and counts every line."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_receiver.py"
HEADER = "-------------------------------------------"


def run_example(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    env.pop("PYTHONPATH", None)
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=cwd, env=env,
    )
    return result, time.monotonic() - start


def pprint_blocks(stdout: str) -> list[list[str]]:
    return [[line for line in block.splitlines() if line.startswith("(")]
            for block in stdout.split(HEADER + "\nTime: ")[1:]]


def test_demo_counts_every_line_of_the_log_by_level_and_stops_by_itself(tmp_path):
    result, took = run_example("--interval", "0.3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert took < 15, f"the example took {took:.1f} s"
    assert re.search(r"^total: \{'ERROR': 3, 'INFO': 20, 'WARN': 7\}$", result.stdout, re.M), (
        result.stdout
    )
    blocks = pprint_blocks(result.stdout)
    assert len(blocks) >= 2, "the lines are counted over several batches"
    per_level: dict[str, int] = {}
    for block in blocks:
        for line in block:
            level, n = re.fullmatch(r"\('(\w+)', (\d+)\)", line).groups()
            per_level[level] = per_level.get(level, 0) + int(n)
    assert per_level == {"ERROR": 3, "INFO": 20, "WARN": 7}, "the pprint blocks add up"


def test_following_a_given_file_counts_the_lines_appended_after_the_start(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("INFO written before the start is not counted\n", encoding="utf-8")

    def append_later() -> None:
        # Appended while the example runs its batches (about three of 0.3 s).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "Time: " not in out.getvalue():
            time.sleep(0.05)
        with log.open("a", encoding="utf-8") as f:
            f.write("WARN one\nERROR two\nWARN three\n")

    out = io.StringIO()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"  # each batch's output as it is printed
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--file", str(log), "--batches", "6",
         "--interval", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
    )
    appender = threading.Thread(target=append_later, daemon=True)
    appender.start()
    assert proc.stdout is not None
    for line in proc.stdout:  # read as it comes, so the appender sees the first batch
        out.write(line)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert proc.wait(timeout=60) == 0, stderr
    appender.join(timeout=30)
    assert re.search(r"^total: \{'ERROR': 1, 'WARN': 2\}$", out.getvalue(), re.M), (
        out.getvalue() + stderr
    )
