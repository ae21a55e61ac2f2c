"""Every ``python`` block of docs/receivers.md runs; shown output is the real output.

A ``text`` block right after a ``python`` block is that program's output, compared exactly
(the guide's programs run on a manual clock).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "receivers.md"
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
            if not text[fence.end():fences[i + 1].start()].strip():
                following = fences[i + 1].group(2)
        out.append((fence.group(2), following))
    return out


BLOCKS = blocks()


def test_the_guide_has_runnable_blocks_with_their_output():
    assert len(BLOCKS) >= 4
    assert sum(output is not None for _, output in BLOCKS) >= 3


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
    if output is not None:
        assert result.stdout == output


def test_the_guide_names_every_receiver_configuration_key_the_core_reads():
    text = GUIDE.read_text(encoding="utf-8")
    core = (ROOT / "core" / "src" / "ember" / "streaming" / "_receiving.py").read_text()
    keys = set(re.findall(r'"(ember\.streaming\.[\w.]+)"', core))
    assert keys, "the receiver core reads configuration keys"
    missing = sorted(k for k in keys if f"`{k}`" not in text)
    assert not missing, f"docs/receivers.md does not document {missing}"
