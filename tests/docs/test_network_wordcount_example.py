"""examples/network_wordcount.py — the guide's quick example — runs, by itself with its demo
server, and against a real server given on the command line."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "network_wordcount.py"
HEADER = "-------------------------------------------"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    env.pop("PYTHONPATH", None)
    return env


def test_with_no_arguments_it_counts_the_demo_servers_words_and_stops_by_itself(tmp_path):
    start = time.monotonic()
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                            timeout=60, check=False, cwd=tmp_path, env=_env())
    took = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    blocks = result.stdout.split(HEADER + "\nTime: ")[1:]
    assert len(blocks) >= 5, result.stdout
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n" + HEADER, b) for b in blocks)
    counts = re.findall(r"^\('(\w+)', (\d+)\)$", result.stdout, re.M)
    words = {w for w, _ in counts}
    assert {"to", "be", "the"} & words, result.stdout
    assert all(int(n) >= 1 for _, n in counts)
    assert took < 30, f"the demo took {took:.0f} s"


@pytest.fixture
def ctrl_c_reaches_children():
    """Un-ignore SIGINT in this process while the test runs: started in the background by a
    non-interactive shell (``pytest &``), it is ignored, and children would inherit that."""
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_with_a_host_and_port_it_reads_that_server_until_interrupted(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(30)
    port = server.getsockname()[1]
    proc = subprocess.Popen(  # faulthandler: a hang is reported with every thread's stack
        [sys.executable, str(EXAMPLE), "127.0.0.1", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**_env(), "PYTHONFAULTHANDLER": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True)
    reader.start()
    try:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"alpha beta alpha\ngamma alpha\n")
            # one send, so one block: the three words are counted in the same batch
            expected = {"('alpha', 3)\n", "('beta', 1)\n", "('gamma', 1)\n"}
            seen: list[str] = []
            deadline = time.monotonic() + 30
            while not expected <= set(seen):
                assert time.monotonic() < deadline, f"the counts never came: {seen!r}"
                try:
                    seen.append(lines.get(timeout=1))
                except queue.Empty:
                    pass
            assert any(s.startswith("Time: ") for s in seen)
            proc.send_signal(signal.SIGINT)  # Ctrl-C: a graceful stop
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)  # faulthandler prints the threads' stacks
                proc.wait(10)
                raise AssertionError(f"no exit 30 s after Ctrl-C:\n{proc.stderr.read()}") from None
            assert code == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.close()
        reader.join(5)
    assert "Traceback" not in proc.stderr.read()
