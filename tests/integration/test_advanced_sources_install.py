"""Advanced sources install on their own, as Spark's separately linked artifacts do: each
plugin goes into a fresh virtual environment with nothing but ember-core and its own
third-party dependencies and is listed by ``ember plugins``; and where a plugin is not
installed, asking for it says which distribution to install.

The environments are real (``uv venv``/``uv pip``, or ``python -m venv`` and pip where uv is
not found) and the distributions are built from their folders, not installed editable, so a
missing entry point or package file would show.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The advanced sources: entry-point name -> plugin folder.
PLUGINS = {
    "mqtt": ROOT / "plugins" / "sources" / "mqtt",
    "zeromq": ROOT / "plugins" / "sources" / "zeromq",
    "twitter": ROOT / "plugins" / "sources" / "twitter",
}
#: The names ember.pyspark.streaming offers for each (module, class).
PYSPARK_NAMES = {
    "mqtt": ("ember.pyspark.streaming.mqtt", "MQTTUtils"),
    "zeromq": ("ember.pyspark.streaming.zeromq", "ZeroMQUtils"),
    "twitter": ("ember.pyspark.streaming.twitter", "TwitterUtils"),
}


def _uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    tools = ROOT / ".venv-tools" / ("Scripts" if os.name == "nt" else "bin") / "uv"
    return str(tools) if tools.exists() else None


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("EMBER_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}


def _run(cmd: list[str], timeout: float = 100) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(),
                            check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _make_venv(where: Path, folders: list[Path]) -> Path:
    """A fresh virtual environment with ``folders`` installed (built, not editable) and their
    third-party dependencies; returns its Python."""
    bindir = "Scripts" if os.name == "nt" else "bin"
    python = where / bindir / "python"
    uv = _uv()
    if uv is not None:
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(where)])
        _run([uv, "pip", "install", "--quiet", "--python", str(python),
              *[str(f) for f in folders]])
    else:
        _run([sys.executable, "-m", "venv", str(where)])
        _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              *[str(f) for f in folders]], timeout=110)
    return python


@pytest.fixture(scope="module")
def core_only(tmp_path_factory) -> Path:
    """The Python of an environment with ember-core and no plugin."""
    return _make_venv(tmp_path_factory.mktemp("core-only") / "venv", [ROOT / "core"])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_an_advanced_source_installs_with_only_ember_core_and_is_listed(name, tmp_path):
    python = _make_venv(tmp_path / "venv", [ROOT / "core", PLUGINS[name]])
    ember = python.parent / "ember"
    listed = json.loads(_run([str(ember), "plugins", "--json", "--kind", "sources"]).stdout)
    by_name = {record["name"]: record for record in listed}
    assert by_name[name]["distribution"] == f"ember-{name}"
    assert by_name[name]["status"] == "ok", by_name[name]["error"]
    others = set(PLUGINS) - {name}
    assert not others & set(by_name), "only the plugin asked for is installed"
    assert set(by_name) == {name, "queue"}, "nothing else came along (queue is ember-core's)"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_without_the_plugin_asking_for_it_says_what_to_install(name, core_only):
    module, cls = PYSPARK_NAMES[name]
    script = textwrap.dedent(f"""
        from ember import Context
        from ember.errors import PluginNotFoundError
        from ember.streaming import StreamingContext

        sc = Context("inline", "no-plugin")
        ssc = StreamingContext(sc, 1.0)
        try:
            ssc.stream({name!r})
        except PluginNotFoundError as exc:
            print("stream:", exc)
        sc.stop()
        try:
            from {module} import {cls}
        except ModuleNotFoundError as exc:
            print("import:", exc, exc.name)
    """)
    out = _run([str(core_only), "-c", script]).stdout
    hint = f"pip install ember-{name}"
    stream_line = next(line for line in out.splitlines() if line.startswith("stream:"))
    import_line = next(line for line in out.splitlines() if line.startswith("import:"))
    assert hint in stream_line and f"no source plugin named {name!r}" in stream_line
    assert hint in import_line and cls in import_line
