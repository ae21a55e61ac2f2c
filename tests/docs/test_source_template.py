"""plugins/_template is a working source plugin: copied, with its markers replaced, it installs
on its own beside ember-core and its tests — ember's receiver contract included — pass.

The template itself is not collected by the repository's test run (its package name is a
placeholder); this test is what keeps it from drifting.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "plugins" / "_template"
MARKERS = re.compile(r"REPLACE_ME|replace_me|ReplaceMe")


def _instantiate(target: Path) -> None:
    shutil.copytree(TEMPLATE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (target / "src" / "ember_replace_me").rename(target / "src" / "ember_demoline")
    for path in target.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            text = text.replace("replace_me", "demoline").replace("ReplaceMe", "Demoline")
            path.write_text(text.replace("REPLACE_ME", "the demo line server"),
                            encoding="utf-8")


def test_every_marker_is_listed_in_the_template_instructions():
    pyproject = (TEMPLATE / "pyproject.toml").read_text(encoding="utf-8")
    for marker in ("replace_me", "ReplaceMe", "REPLACE_ME"):
        assert marker in pyproject.split("[project]")[0], marker
    names = {p.name for p in TEMPLATE.rglob("*") if MARKERS.search(p.name)}
    assert names == {"ember_replace_me", "test_replace_me.py"}


@pytest.mark.slow
def test_the_template_becomes_a_plugin_that_passes_the_receiver_contract(tmp_path):
    plugin = tmp_path / "ember-demoline"
    _instantiate(plugin)
    leftovers = [str(p) for p in plugin.rglob("*") if p.is_file()
                 and MARKERS.search(p.read_text(encoding="utf-8"))]
    assert not leftovers
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("EMBER_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    venv = tmp_path / "venv"
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    uv = shutil.which("uv") or str(ROOT / ".venv-tools" / "bin" / "uv")
    if Path(uv).exists():
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                       check=True, env=env, timeout=60)
        install = [uv, "pip", "install", "--quiet", "--python", str(python)]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env,
                       timeout=60)
        install = [str(python), "-m", "pip", "install", "--quiet"]
    # what the template's "test" extra names, from this repository's folders
    pickle_plugin = ROOT / "plugins" / "serializers" / "pickle"
    subprocess.run([*install, f"{ROOT / 'core'}[testing]", str(pickle_plugin), str(plugin)],
                   check=True, env=env, timeout=110, capture_output=True)
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "tests"],
        cwd=plugin, env=env, capture_output=True, text=True, timeout=110, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))
    assert passed >= 35, result.stdout[-2000:]
