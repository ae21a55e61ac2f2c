"""Command output embedded in docs/ is the real output of the ``ember`` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_blocks_in_the_docs_are_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "update_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        "docs are out of date; run `python tools/update_docs.py`:\n" + result.stdout
    )


def test_the_docs_have_generated_blocks():
    assert "[[[cog: ember plugins" in (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
