"""Every ``python`` block of docs/state-and-checkpoints.md runs and prints what follows it.

The blocks run on the manual clock (``run_batches``, or ``ember.streaming.clock=manual``), so
the ``text`` block after each is compared exactly with what the program printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "state-and-checkpoints.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)


def blocks() -> list[tuple[str, str]]:
    """(python source, the text block right after it), in order."""
    text = GUIDE.read_text(encoding="utf-8")
    fences = list(FENCE.finditer(text))
    out = []
    for fence, after in zip(fences, [*fences[1:], None], strict=True):
        if fence.group(1) != "python":
            continue
        assert after is not None and after.group(1) == "text", (
            f"the python block at offset {fence.start()} needs its output in a text block")
        assert not text[fence.end():after.start()].strip(), "nothing between code and output"
        out.append((fence.group(2), after.group(2)))
    return out


BLOCKS = blocks()


def test_the_page_has_runnable_blocks():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize(("source", "output"), BLOCKS,
                         ids=[f"block-{i}" for i in range(len(BLOCKS))])
def test_block_runs_and_prints_what_the_page_shows(source, output, tmp_path):
    program = tmp_path / "block.py"
    program.write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                            timeout=60, check=False, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == output
