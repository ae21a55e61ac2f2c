#!/usr/bin/env python3
"""Set up a development environment and run ember's example or its test suite.

    python3 tools/dev.py example   # set everything up, run the quick example
    python3 tools/dev.py test      # set everything up, run every test (core and plugins)
    python3 tools/dev.py setup     # only set up

Needs nothing but Python 3.10+ with venv: it installs uv into ``.venv-tools`` and lets uv
build ``.venv`` from ``uv.lock`` (ember-core and every plugin installed editable, plus the
dev tools). Extra arguments after ``test`` go to pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, ".venv-tools")
ENV = os.path.join(ROOT, ".venv")
BIN = "Scripts" if os.name == "nt" else "bin"
EXAMPLE = os.path.join("examples", "network_wordcount.py")


def run(cmd: list[str], **kw: object) -> int:
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, **kw)  # type: ignore[arg-type]


def check(cmd: list[str]) -> None:
    code = run(cmd)
    if code:
        sys.exit(f"dev.py: {cmd[0]} failed with exit code {code}")


def setup() -> str:
    """Create the environments; returns the project's Python."""
    if sys.version_info < (3, 10):  # noqa: UP036 - tell users of older Pythons clearly
        sys.exit(f"ember needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    uv = os.path.join(TOOLS, BIN, "uv")
    if not os.path.exists(uv):
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
        check([os.path.join(TOOLS, BIN, "python"), "-m", "pip", "install", "-q",
               "--disable-pip-version-check", "uv>=0.5"])
    env_python = os.path.join(ENV, BIN, "python")
    check([uv, "sync", "--all-packages", "--locked", "--quiet", "--python", sys.executable])
    return env_python


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "help"
    if what not in ("setup", "example", "test"):
        print(__doc__)
        return 0 if what in ("help", "-h", "--help") else 2
    python = setup()
    if what == "setup":
        return 0
    if what == "example":
        return run([python, EXAMPLE, *argv[1:]])
    ruff = os.path.join(ENV, BIN, "ruff")
    check([ruff, "check", "--quiet", "core", "plugins", "tests", "examples", "benchmarks",
           "tools"])
    check([os.path.join(ENV, BIN, "ember"), "plugins", "--check"])
    code = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *argv[1:]])
    if code == 5:
        print("dev.py: pytest collected no tests - that is a failure", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
