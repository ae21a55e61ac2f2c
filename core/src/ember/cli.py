"""The ``ember`` command line.

Built-in commands:

- ``ember plugins``: every installed plugin, its distribution, version, API version, delivery
  guarantee, target and status (``--json``, ``--kind``, ``--no-load``, ``--check``,
  ``--requirements``, ``--verbose``).
- ``ember version`` (or ``ember --version``): the ember-core version and location, the plugin
  distributions and the plugins' report-header lines.

Hook plugins add commands through ``ember_add_cli_commands``. Hook plugins are only loaded
when a command needs them: ``ember plugins --no-load`` imports no plugin at all.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from ember.plugins import CORE_DISTRIBUTION, KINDS, PluginRecord, get_plugin_manager, list_plugins

__all__ = ["build_parser", "main"]

_BUILTIN_COMMANDS = ("plugins", "version")
_COLUMNS = ("KIND", "NAME", "DISTRIBUTION", "VERSION", "API", "DELIVERY", "TARGET", "STATUS")


def _version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def _conf_for_header() -> Any:
    """The configuration passed to ``ember_report_header``; ``None`` if none can be built."""
    try:
        from ember.conf import Conf  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Conf()


def _report_header(pm: pluggy.PluginManager) -> list[str]:
    from ember._hooks import Hooks

    return Hooks(pm).report_header(_conf_for_header())


# --------------------------------------------------------------------------- plugins


def _status_text(record: PluginRecord) -> str:
    text = record.status
    if record.hooks:
        text += f" ({', '.join(record.hooks)})"
    if record.aliases:
        text += f"; aliases: {', '.join(record.aliases)}"
    return text


def _row(record: PluginRecord) -> tuple[str, ...]:
    return (
        record.kind,
        record.name,
        record.distribution or "-",
        record.version or "-",
        record.api_version or "-",
        record.delivery or "-",
        record.target,
        _status_text(record),
    )


def format_table(records: Sequence[PluginRecord]) -> str:
    """Render records as the aligned text table of ``ember plugins``."""
    rows = [_COLUMNS, *(_row(r) for r in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _cmd_plugins(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else None
    # Broken hook plugins are reported in the table; do not also warn about them on stderr.
    plugin_log = logging.getLogger("ember.plugins")
    previous = plugin_log.level
    plugin_log.setLevel(logging.ERROR)
    try:
        pm = None
        if not args.no_load and args.kind in (None, "hooks"):
            pm = args.plugin_manager or get_plugin_manager()
        records = list_plugins(load=not args.no_load, kinds=kinds, pm=pm)
    finally:
        plugin_log.setLevel(previous)
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
    elif args.requirements:
        reqs = sorted(
            {
                f"{r.distribution}=={r.version}"
                for r in records
                if r.distribution and r.version and r.distribution != CORE_DISTRIBUTION
            }
        )
        for line in reqs:
            print(line)
    else:
        print(format_table(records))
        problems = [r for r in records if r.problem]
        if problems and args.verbose:
            for r in problems:
                who = f"{r.distribution} {r.version}" if r.distribution else "unknown distribution"
                print(f"\n{r.kind} {r.name!r} ({who}, {r.target}): {r.status}")
                print((r.error or "").rstrip())
        elif problems:
            print(
                f"\n{len(problems)} plugin(s) have problems; `ember plugins --verbose` shows "
                f"their tracebacks."
            )
        if pm is not None:
            header = _report_header(pm)
            if header:
                print()
                print("\n".join(header))
    if args.check and any(r.problem for r in records):
        return 1
    return 0


# --------------------------------------------------------------------------- version


def _cmd_version(args: argparse.Namespace) -> int:
    import ember

    location = Path(ember.__file__).resolve().parent
    print(
        f"{CORE_DISTRIBUTION} {_version_of(CORE_DISTRIBUTION)} at {location} "
        f"(Python {sys.version.split()[0]}, pluggy {_version_of('pluggy')}, "
        f"stevedore {_version_of('stevedore')})"
    )
    dists = sorted(
        {
            f"{r.distribution}-{r.version}"
            for r in list_plugins(load=False)
            if r.distribution and r.distribution != CORE_DISTRIBUTION
        }
    )
    print(f"plugins: {', '.join(dists) if dists else 'none'}")
    pm = getattr(args, "plugin_manager", None) or get_plugin_manager()
    for line in _report_header(pm):
        print(line)
    return 0


# --------------------------------------------------------------------------- parser


def build_parser(pm: pluggy.PluginManager | None = None) -> argparse.ArgumentParser:
    """Build the ``ember`` argument parser.

    :param pm: when given, hook plugins add their commands through ``ember_add_cli_commands``
        and handlers find the manager as ``args.plugin_manager``.
    """
    parser = argparse.ArgumentParser(
        prog="ember",
        description="ember: the Spark Streaming programming model in pure Python.",
    )
    parser.add_argument(
        "--version", action="store_true", help="show ember-core and plugin versions and exit"
    )
    parser.set_defaults(func=None, plugin_manager=pm)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    plugins = sub.add_parser(
        "plugins",
        help="list the installed plugins",
        description="List every installed plugin (entry-point groups ember.sources, "
        "ember.sinks, ember.serializers, ember.executors and ember.hooks).",
    )
    plugins.add_argument("--kind", choices=[*KINDS, "hooks"], help="only plugins of this kind")
    out = plugins.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON (a stable schema)")
    out.add_argument(
        "--requirements", action="store_true", help="print name==version of plugin distributions"
    )
    plugins.add_argument(
        "--no-load", action="store_true", help="read metadata only; import no plugin"
    )
    plugins.add_argument(
        "--check", action="store_true", help="exit 1 if a plugin is broken or incompatible"
    )
    plugins.add_argument(
        "-v", "--verbose", action="store_true", help="show the traceback of each broken plugin"
    )
    plugins.set_defaults(func=_cmd_plugins)

    version = sub.add_parser("version", help="show ember-core and plugin versions")
    version.set_defaults(func=_cmd_version)

    if pm is not None:
        from ember._hooks import Hooks

        try:
            Hooks(pm).add_cli_commands(sub)
        except Exception as exc:
            print(
                f"ember: warning: a plugin failed to add its commands and some may be missing: "
                f"{type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
    return parser


def _first_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ember`` command; returns the exit code.

    :param argv: the arguments (default ``sys.argv[1:]``).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = _first_command(args_list)
    wants_plugins = command not in _BUILTIN_COMMANDS and "--version" not in args_list
    parser = build_parser(get_plugin_manager() if wants_plugins else None)
    args = parser.parse_args(args_list)
    if args.version:
        return _cmd_version(args)
    if args.func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `ember plugins | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
