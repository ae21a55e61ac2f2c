"""Real entry points without installing anything: for testing plugin discovery.

:func:`write_distribution` writes a ``NAME-VERSION.dist-info`` directory (``METADATA`` and
``entry_points.txt``) and, optionally, the plugin's modules into a directory. Put that directory
on ``sys.path`` (``monkeypatch.syspath_prepend(path)``) or on ``PYTHONPATH`` for a subprocess,
and :mod:`importlib.metadata` (hence :func:`ember.plugins.load_component`, ``ember plugins``)
sees an installed distribution with those entry points::

    def test_my_source_is_found(tmp_path, monkeypatch):
        write_distribution(
            tmp_path, "ember-demo", "0.1.0",
            {"ember.sources": {"demo": "ember_demo:DemoSource"}},
            modules={"ember_demo": "class DemoSource:\\n    delivery = 'at-least-once'\\n"},
        )
        monkeypatch.syspath_prepend(tmp_path)
        assert load_component("sources", "demo").__name__ == "DemoSource"

Remove the modules from :data:`sys.modules` afterwards (``monkeypatch.delitem``) if several
tests reuse a module name.
"""

from __future__ import annotations

import importlib
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path

__all__ = ["write_distribution"]


def write_distribution(
    path: str | Path,
    name: str,
    version: str,
    entry_points: Mapping[str, Mapping[str, str]],
    modules: Mapping[str, str] | None = None,
) -> Path:
    """Write a distribution's metadata (and modules) into the directory ``path``.

    :param path: a directory meant for ``sys.path``; created if missing.
    :param name: the distribution name, e.g. ``"ember-demo"``.
    :param version: its version, e.g. ``"0.1.0"``.
    :param entry_points: ``{group: {entry-point name: "module:attr"}}``.
    :param modules: ``{dotted module name: source}``; ``"pkg.mod"`` is written as
        ``pkg/mod.py`` (with an empty ``pkg/__init__.py`` unless given), ``"mod"`` as
        ``mod.py``. The source is dedented.
    :returns: the ``.dist-info`` directory written.
    """
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    normalized = re.sub(r"[-_.]+", "_", name)
    dist_info = root / f"{normalized}-{version}.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = []
    for group, items in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{ep_name} = {target}" for ep_name, target in items.items())
        lines.append("")
    (dist_info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    names = set(modules or {})
    for module, source in (modules or {}).items():
        parts = module.split(".")
        if any(other.startswith(module + ".") for other in names):
            target = root.joinpath(*parts, "__init__.py")
        else:
            target = root.joinpath(*parts[:-1], f"{parts[-1]}.py")
        target.parent.mkdir(parents=True, exist_ok=True)
        for depth in range(1, len(parts)):
            init = root.joinpath(*parts[:depth], "__init__.py")
            if ".".join(parts[:depth]) not in names and not init.exists():
                init.write_text("", encoding="utf-8")
        target.write_text(textwrap.dedent(source), encoding="utf-8")
    importlib.invalidate_caches()
    return dist_info
