"""docs/delivery-guarantees.md cannot drift: its program runs and prints what it shows, every
write-ahead log key is documented with its default, and its delivery tables agree with the
``delivery`` the installed plugins declare (``ember plugins --json``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import ember.wal as wal
import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "delivery-guarantees.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
TEXT = GUIDE.read_text(encoding="utf-8")


def runnable_blocks() -> list[tuple[str, str | None]]:
    """(python program, the text block right after it) for blocks that are whole programs."""
    fences = list(FENCE.finditer(TEXT))
    out = []
    for i, fence in enumerate(fences):
        if fence.group(1) != "python" or "import " not in fence.group(2):
            continue  # a fragment (methods of a receiver) is not a program
        following = None
        if i + 1 < len(fences) and fences[i + 1].group(1) == "text" \
                and not TEXT[fence.end():fences[i + 1].start()].strip():
            following = fences[i + 1].group(2)
        out.append((fence.group(2), following))
    return out


BLOCKS = runnable_blocks()


def test_the_guide_has_a_runnable_program_with_its_output():
    assert BLOCKS and all(output is not None for _, output in BLOCKS)


@pytest.mark.parametrize(("source", "output"), BLOCKS,
                         ids=[f"block-{i}" for i in range(len(BLOCKS))])
def test_the_program_prints_what_the_guide_shows(source, output, tmp_path):
    program = tmp_path / "block.py"
    program.write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                            timeout=60, check=False, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == output


def test_every_write_ahead_log_key_is_documented_with_its_default():
    keys = {wal.ENABLE_KEY: "false", wal.CLASS_KEY: "(the file log)",
            wal.ROLLING_INTERVAL_KEY: "60", wal.FSYNC_KEY: "always",
            wal.FSYNC_INTERVAL_KEY: "1"}
    for key, default in keys.items():
        assert re.search(rf"\| `{re.escape(key)}` \| `?{re.escape(default)}`? \|", TEXT), key
    defaults = wal.FileWriteAheadLog.__init__.__kwdefaults__
    assert defaults == {"rolling_interval_s": 60.0, "fsync": "always", "fsync_interval_s": 1.0}


def listed_plugins() -> dict[tuple[str, str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    out = subprocess.run([sys.executable, "-m", "ember.cli", "plugins", "--json"],
                         capture_output=True, text=True, timeout=60, check=True, env=env)
    return {(r["kind"], r["name"]): r["delivery"] for r in json.loads(out.stdout)
            if r["kind"] in ("sources", "sinks")}


def test_the_delivery_shown_agrees_with_the_plugins_that_are_installed():
    installed = listed_plugins()
    block = FENCE.search(TEXT)
    assert block is not None and block.group(1) == "text"
    shown = {}
    for line in block.group(2).splitlines()[1:]:
        kind, name, _dist, delivery = line.split()
        shown[(kind, name)] = delivery
    assert shown
    for key, delivery in shown.items():
        if key in installed:
            assert installed[key] == delivery, key
    assert set(shown) >= {k for k in installed if k[1] in ("file", "socket", "queue", "foreach",
                                                            "text", "objectfile")}


def test_each_table_row_names_a_source_or_sink_with_its_declared_delivery():
    installed = listed_plugins()
    for (_kind, name), delivery in installed.items():
        row = re.search(rf"^\| `{name}`[^|]*\| ([^|]+) \|", TEXT, re.M)
        if row is None:
            continue  # a plugin this guide does not describe (yet)
        assert delivery.replace("-", " ") in row.group(1), (name, row.group(1))
