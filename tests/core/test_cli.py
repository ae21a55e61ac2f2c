"""The real ``ember`` console script, run in a subprocess.

Fake plugins are distributions written into a temporary directory put on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ember.testing.entrypoints import write_distribution

EMBER = Path(sys.executable).with_name("ember")
SCHEMA = [
    "kind",
    "name",
    "distribution",
    "version",
    "target",
    "api_version",
    "delivery",
    "aliases",
    "status",
    "error",
    "hooks",
]
HOOK_PLUGIN = """
    from ember import hookimpl

    @hookimpl
    def ember_report_header(conf):
        return ["greeter: ready", f"greeter conf: {type(conf).__name__}"]

    @hookimpl
    def ember_add_cli_commands(subparsers):
        greet = subparsers.add_parser("greet", help="say hello")
        greet.add_argument("name")
        greet.set_defaults(func=run)

    def run(args):
        print(f"hello {args.name}")
        return 7
"""


def ember(*args: str, path: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    full_env.pop("PYTHONPATH", None)
    if path is not None:
        full_env["PYTHONPATH"] = str(path)
    full_env.update(env)
    return subprocess.run(
        [str(EMBER), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def site(tmp_path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    return root


@pytest.fixture
def greeter(site) -> Path:
    write_distribution(
        site,
        "ember-fake-greeter",
        "0.2.0",
        {"ember.hooks": {"greeter": "fake_greeter"}},
        modules={"fake_greeter": HOOK_PLUGIN},
    )
    return site


@pytest.fixture
def broken(site, tmp_path) -> Path:
    write_distribution(
        site,
        "ember-fake-twitter",
        "0.1.0",
        {"ember.sources": {"chirper": "fake_twitter:TwitterSource"}},
        modules={
            "fake_twitter": f"open({str(tmp_path / 'imported')!r}, 'w').close()\n"
            "import tweepy_is_not_installed_here\n"
        },
    )
    return site


def rows(stdout: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


def test_the_console_script_is_installed():
    assert EMBER.exists()


def test_plugins_prints_a_table_of_every_plugin():
    result = ember("plugins")
    assert result.returncode == 0, result.stderr
    table = rows(result.stdout)
    assert table[0] == [
        "KIND",
        "NAME",
        "DISTRIBUTION",
        "VERSION",
        "API",
        "DELIVERY",
        "TARGET",
        "STATUS",
    ]
    assert [
        "serializers",
        "pickle",
        "ember-pickle",
        "0.1.0",
        "1.0",
        "-",
        "ember_pickle:PickleSerializer",
        "ok",
    ] in table
    assert [
        "hooks",
        "defaults",
        "ember-core",
        "0.1.0",
        "1.0",
        "-",
        "ember._defaults",
        "builtin (ember_config_defaults)",
    ] in table
    kinds = [row[0] for row in table[1:]]
    order = ["sources", "sinks", "serializers", "executors", "hooks"]
    assert kinds == sorted(kinds, key=order.index), "grouped by kind"


def test_plugins_json_has_the_stable_schema():
    result = ember("plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data and all(list(item) == SCHEMA for item in data)
    (pickle,) = [d for d in data if d["kind"] == "serializers" and d["name"] == "pickle"]
    assert pickle == {
        "kind": "serializers",
        "name": "pickle",
        "distribution": "ember-pickle",
        "version": "0.1.0",
        "target": "ember_pickle:PickleSerializer",
        "api_version": "1.0",
        "delivery": None,
        "aliases": [],
        "status": "ok",
        "error": None,
        "hooks": [],
    }


def test_plugins_kind_shows_only_that_kind():
    data = json.loads(ember("plugins", "--kind", "serializers", "--json").stdout)
    assert {d["kind"] for d in data} == {"serializers"}
    assert {d["name"] for d in data} >= {"pickle", "cloudpickle"}


def test_check_exits_0_when_nothing_is_broken():
    result = ember("plugins", "--kind", "serializers", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_exits_1_and_the_table_shows_a_broken_plugin(broken):
    result = ember("plugins", "--check", path=broken)
    assert result.returncode == 1
    assert [
        "sources",
        "chirper",
        "ember-fake-twitter",
        "0.1.0",
        "-",
        "-",
        "fake_twitter:TwitterSource",
        "broken: ModuleNotFoundError: No module named 'tweepy_is_not_installed_here'",
    ] in rows(result.stdout)
    assert "1 plugin(s) have problems" in result.stdout
    assert ember("plugins", path=broken).returncode == 0, "without --check it is a report"


def test_verbose_shows_the_broken_plugins_traceback(broken):
    result = ember("plugins", "--verbose", path=broken)
    assert "Traceback (most recent call last):" in result.stdout
    assert "fake_twitter.py" in result.stdout


def test_json_carries_the_broken_plugins_traceback(broken):
    data = json.loads(ember("plugins", "--json", path=broken).stdout)
    (twitter,) = [d for d in data if d["name"] == "chirper"]
    assert twitter["status"].startswith("broken: ModuleNotFoundError")
    assert "fake_twitter.py" in twitter["error"]


def test_no_load_imports_no_plugin(broken, tmp_path):
    result = ember("plugins", "--no-load", "--check", path=broken)
    assert result.returncode == 0, "nothing was imported, so nothing is known to be broken"
    assert not (tmp_path / "imported").exists()
    (twitter,) = [row for row in rows(result.stdout) if row[1] == "chirper"]
    assert twitter[-1] == "not loaded"


def test_requirements_lists_plugin_distributions(greeter):
    result = ember("plugins", "--requirements", path=greeter)
    lines = result.stdout.splitlines()
    assert "ember-pickle==0.1.0" in lines and "ember-fake-greeter==0.2.0" in lines
    assert lines == sorted(lines) and not any(line.startswith("ember-core") for line in lines)


def test_hook_plugins_are_listed_with_their_hooks(greeter):
    data = json.loads(ember("plugins", "--kind", "hooks", "--json", path=greeter).stdout)
    (item,) = [d for d in data if d["name"] == "greeter"]
    assert item["hooks"] == ["ember_add_cli_commands", "ember_report_header"]
    assert item["status"] == "ok" and item["distribution"] == "ember-fake-greeter"


def test_the_allow_list_narrows_the_hook_plugins(greeter):
    data = json.loads(
        ember("plugins", "--kind", "hooks", "--json", path=greeter, EMBER_PLUGINS="").stdout
    )
    statuses = {d["name"]: d["status"] for d in data}
    assert statuses.pop("defaults") == "builtin"
    assert statuses["greeter"] == "disabled: not in EMBER_PLUGINS"
    # Hook plugins installed in the environment (ember-ui in the workspace) are off too.
    assert set(statuses.values()) == {"disabled: not in EMBER_PLUGINS"}


@pytest.mark.parametrize("args", [["version"], ["--version"]])
def test_version_shows_core_plugins_and_report_header(greeter, args):
    result = ember(*args, path=greeter)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    import ember as ember_package

    location = Path(ember_package.__file__).resolve().parent
    assert lines[0].startswith(f"ember-core 0.1.0 at {location} (Python ")
    assert lines[1].startswith("plugins: ")
    listed = lines[1].removeprefix("plugins: ").split(", ")
    assert {"ember-pickle-0.1.0", "ember-cloudpickle-0.1.0", "ember-fake-greeter-0.2.0"} <= set(
        listed
    )
    assert listed == sorted(listed)
    assert lines[2] == "greeter: ready"
    assert lines[3].startswith("greeter conf: ")


def test_plugins_add_subcommands(greeter):
    result = ember("greet", "ember", path=greeter)
    assert result.stdout == "hello ember\n"
    assert result.returncode == 7
    assert "greet" in ember("--help", path=greeter).stdout


def test_a_plugin_failing_to_add_its_commands_does_not_break_the_command_line(site):
    write_distribution(
        site,
        "ember-fake-clash",
        "0.1",
        {"ember.hooks": {"clash": "fake_clash"}},
        modules={
            "fake_clash": """
                from ember import hookimpl
                @hookimpl
                def ember_add_cli_commands(subparsers):
                    raise RuntimeError("cannot add")
            """
        },
    )
    result = ember("--help", path=site)
    assert result.returncode == 0
    assert "a plugin failed to add its commands" in result.stderr
    assert "plugins" in result.stdout


def test_no_command_prints_usage_and_exits_2():
    result = ember()
    assert result.returncode == 2
    assert "usage: ember" in result.stderr


def test_unknown_command_exits_2():
    result = ember("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
