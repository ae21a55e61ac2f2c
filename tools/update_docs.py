"""Regenerate the command output shown in the docs from the real ``ember`` command.

A block in a Markdown file under ``docs/``::

    <!-- [[[cog: ember plugins --kind serializers]]] -->
    ```text
    (output, rewritten by this script)
    ```
    <!-- [[[end]]] -->

is replaced by the output of that command (run with the ``ember`` script next to the current
Python, with no ``EMBER_*`` variables and no ``PYTHONPATH``). ``--check`` changes nothing and
exits 1 with a diff when a block is out of date (tests/docs runs it).

Usage: ``python tools/update_docs.py [--check] [FILE ...]``
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(
    r"(?P<open><!-- \[\[\[cog: (?P<command>[^\]]+?)\]\]\] -->\n)(?P<body>.*?)(?P<close><!-- \[\[\[end\]\]\] -->)",
    re.DOTALL,
)


def run(command: str) -> str:
    args = shlex.split(command)
    if not args or args[0] != "ember":
        raise SystemExit(f"only `ember ...` commands may be embedded, not {command!r}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    env.pop("PYTHONPATH", None)
    script = Path(sys.executable).with_name("ember")
    result = subprocess.run(
        [str(script), *args[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    return result.stdout


def render(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        command = match.group("command").strip()
        language = "json" if "--json" in command.split() else "text"
        output = run(command).rstrip("\n")
        if language == "text":  # a JSON block stays valid JSON; its command is in the prose
            output = f"$ {command}\n{output}"
        return f"{match.group('open')}```{language}\n{output}\n```\n{match.group('close')}"

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="report stale blocks, change nothing")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    files = args.files or sorted((ROOT / "docs").glob("**/*.md"))
    stale = 0
    for path in files:
        old = path.read_text(encoding="utf-8")
        if not BLOCK.search(old):
            continue
        new = render(old)
        if new == old:
            continue
        stale += 1
        if args.check:
            sys.stdout.writelines(
                difflib.unified_diff(
                    old.splitlines(keepends=True),
                    new.splitlines(keepends=True),
                    f"{path} (in the docs)",
                    f"{path} (real output)",
                )
            )
        else:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path}")
    if args.check and stale:
        print(f"\n{stale} file(s) out of date: run `python tools/update_docs.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
