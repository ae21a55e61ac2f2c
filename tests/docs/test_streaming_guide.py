"""Every ``python`` block of docs/streaming.md runs; shown output is the real output.

A ``text`` block right after a ``python`` block is that program's output. It is compared
exactly when the program is driven by a manual clock (``ManualClock``, ``run_batches``); the
other programs follow the system clock, so their output block is an illustration and only
their success is checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "streaming.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)


def blocks() -> list[tuple[str, str | None]]:
    """(python source, the text block right after it or None), in order."""
    text = GUIDE.read_text(encoding="utf-8")
    fences = list(FENCE.finditer(text))
    out = []
    for i, fence in enumerate(fences):
        if fence.group(1) != "python":
            continue
        following = None
        if i + 1 < len(fences) and fences[i + 1].group(1) == "text":
            between = text[fence.end():fences[i + 1].start()]
            if not between.strip():
                following = fences[i + 1].group(2)
        out.append((fence.group(2), following))
    return out


BLOCKS = blocks()


def test_the_guide_has_runnable_blocks():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize(("source", "output"), BLOCKS,
                         ids=[f"block-{i}" for i in range(len(BLOCKS))])
def test_guide_block_runs_and_prints_what_the_guide_shows(source, output, tmp_path):
    program = tmp_path / "block.py"
    program.write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                            timeout=60, check=False, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    deterministic = "ManualClock" in source or "run_batches" in source
    if output is not None and deterministic:
        assert result.stdout == output
