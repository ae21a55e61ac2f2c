"""Finding, loading and listing plugins (ember.plugins).

Fake plugins are real distributions written into a temporary directory on sys.path
(ember.testing.entrypoints.write_distribution): importlib.metadata sees them as installed.
"""

from __future__ import annotations

import enum
import functools
import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ember.plugins as plugins
import pytest
from ember.errors import (
    DuplicatePluginError,
    PluginLoadError,
    PluginNotFoundError,
    PluginVersionError,
)
from ember.plugins import (
    API_VERSION,
    KINDS,
    KNOWN_PLUGINS,
    PluginRecord,
    api_version_fits,
    get_plugin_manager,
    list_plugins,
    load_component,
)
from ember.testing.entrypoints import write_distribution

CORE_VERSION = importlib.metadata.version("ember-core")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fresh directory on sys.path to "install" fake distributions into."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    for var in ("EMBER_PLUGINS", "EMBER_DISABLE_PLUGINS", "EMBER_TRACE_HOOKS"):
        monkeypatch.delenv(var, raising=False)
    plugins._reset_caches()
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("fake_"):
            del sys.modules[name]
    plugins._reset_caches()


@pytest.fixture
def install(site):
    return functools.partial(write_distribution, site)


def canary(marker: Path, body: str = "") -> str:
    """Module source that leaves ``marker`` behind when imported."""
    return f"open({str(marker)!r}, 'w').close()\n" + textwrap.dedent(body)


def record(kind: str, name: str, **kwargs) -> PluginRecord:
    found = [r for r in list_plugins(kinds=[kind], **kwargs) if r.name == name]
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- load_component


def test_load_component_returns_the_class_an_entry_point_names():
    from ember_pickle import PickleSerializer

    assert load_component("serializers", "pickle") is PickleSerializer


def test_load_component_caches_the_class_and_does_not_rescan(monkeypatch, site):
    first = load_component("serializers", "pickle")

    def no_scan(group):
        raise AssertionError("entry points were scanned again")

    monkeypatch.setattr(plugins, "_entry_points", no_scan)
    assert load_component("serializers", "pickle") is first


def test_load_component_imports_only_the_plugin_asked_for(install, tmp_path):
    other = tmp_path / "other-imported"
    install(
        "ember-fake-two",
        "1.0",
        {"ember.sources": {"one": "fake_one:Source", "two": "fake_two:Source"}},
        modules={
            "fake_one": "class Source: pass\n",
            "fake_two": canary(other, "class Source: pass\n"),
        },
    )
    assert load_component("sources", "one").__name__ == "Source"
    assert not other.exists()
    assert "fake_two" not in sys.modules


def test_unknown_kind_is_a_value_error_naming_the_valid_kinds():
    with pytest.raises(ValueError) as info:
        load_component("transformers", "x")
    for kind in KINDS:
        assert kind in str(info.value)


def test_missing_plugin_names_group_name_installed_alternatives_and_distribution(
    install, monkeypatch
):
    # A known plugin that is not installed (every real one is installed in the dev workspace).
    monkeypatch.setitem(KNOWN_PLUGINS["sources"], "nonesuch", "ember-nonesuch")
    install("ember-fake-socketish", "0.1", {"ember.sources": {"socketish": "fake_s:S"}})
    with pytest.raises(PluginNotFoundError) as info:
        load_component("sources", "nonesuch")
    message = str(info.value)
    assert "'ember.sources'" in message
    assert "'nonesuch'" in message
    assert "socketish" in message  # what is installed instead
    assert "pip install ember-nonesuch" in message
    assert "socketish" in info.value.installed and "nonesuch" not in info.value.installed
    assert info.value.hint == "pip install ember-nonesuch"


def test_missing_plugin_with_a_close_installed_name_suggests_it():
    with pytest.raises(PluginNotFoundError) as info:
        load_component("serializers", "pickel")
    assert "did you mean 'pickle'" in str(info.value)
    assert "cloudpickle" in str(info.value) and "pickle" in info.value.installed


def test_missing_builtin_says_ember_core_is_damaged(monkeypatch, site):
    monkeypatch.setattr(plugins, "_entry_points", lambda group: [])
    with pytest.raises(PluginNotFoundError) as info:
        load_component("executors", "inline")
    assert "pip install --force-reinstall ember-core" in str(info.value)


def test_plugin_installed_after_a_failed_lookup_is_found_next_time(install):
    with pytest.raises(PluginNotFoundError):
        load_component("sinks", "late")
    install(
        "ember-fake-late",
        "0.2",
        {"ember.sinks": {"late": "fake_late:Sink"}},
        modules={"fake_late": "class Sink: pass\n"},
    )
    assert load_component("sinks", "late").__module__ == "fake_late"


def test_broken_plugin_raises_plugin_load_error_caused_by_its_own_exception(install):
    install(
        "ember-fake-broken",
        "1.2.3",
        {"ember.sources": {"broken": "fake_broken:Source"}},
        modules={"fake_broken": "import tweepy_is_not_installed_here\nclass Source: pass\n"},
    )
    with pytest.raises(PluginLoadError) as info:
        load_component("sources", "broken")
    err = info.value
    assert isinstance(err.__cause__, ModuleNotFoundError)
    assert err.__cause__.name == "tweepy_is_not_installed_here"
    assert "ember-fake-broken 1.2.3" in str(err)
    assert "tweepy_is_not_installed_here" in str(err)
    assert (err.kind, err.name, err.distribution, err.version) == (
        "sources",
        "broken",
        "ember-fake-broken",
        "1.2.3",
    )
    # the plugin's own traceback survives: its module is in the cause's frames
    frames = []
    tb = err.__cause__.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert any(f.endswith("fake_broken.py") for f in frames)


@pytest.mark.parametrize(
    ("body", "exc_type"),
    [("raise SystemExit(3)\n", SystemExit), ("assert False, 'plugin bug'\n", AssertionError)],
    ids=["system-exit", "assertion"],
)
def test_plugin_raising_system_exit_or_assertion_on_import_is_a_load_error(install, body, exc_type):
    install(
        "ember-fake-rude",
        "0.1",
        {"ember.sinks": {"rude": "fake_rude:Sink"}},
        modules={"fake_rude": body},
    )
    with pytest.raises(PluginLoadError) as info:
        load_component("sinks", "rude")
    assert isinstance(info.value.__cause__, exc_type)
    assert record("sinks", "rude").status.startswith(f"broken: {exc_type.__name__}")


def test_same_name_from_two_distributions_is_an_error_naming_both(install, tmp_path):
    marker = tmp_path / "imported"
    install(
        "ember-fake-a",
        "1.0",
        {"ember.serializers": {"dup": "fake_dup_a:S"}},
        modules={"fake_dup_a": canary(marker, "class S: pass\n")},
    )
    install(
        "ember-fake-b",
        "2.0",
        {"ember.serializers": {"dup": "fake_dup_b:S"}},
        modules={"fake_dup_b": canary(marker, "class S: pass\n")},
    )
    with pytest.raises(DuplicatePluginError) as info:
        load_component("serializers", "dup")
    message = str(info.value)
    assert "ember-fake-a 1.0 (fake_dup_a:S)" in message
    assert "ember-fake-b 2.0 (fake_dup_b:S)" in message
    assert "pip uninstall" in message
    assert not marker.exists(), "neither candidate may be imported"
    statuses = [r.status for r in list_plugins(kinds=["serializers"]) if r.name == "dup"]
    assert len(statuses) == 2 and all(
        s.startswith("conflict: also registered by") for s in statuses
    )


# --------------------------------------------------------------------------- API versions


@pytest.mark.parametrize(
    ("plugin", "core", "fits"),
    [
        ("1.0", "1.0", True),
        ("1.0", "1.3", True),
        ("1.3", "1.3", True),
        ("1.4", "1.3", False),
        ("2.0", "1.3", False),
        ("0.9", "1.3", False),
        ("1", "1.0", False),
        ("1.0.0", "1.0", False),
        ("banana", "1.0", False),
        (" 1.0 ", "1.0", True),
    ],
)
def test_api_version_fits_same_major_and_no_newer_minor(plugin, core, fits):
    assert api_version_fits(plugin, core) is fits


def test_core_api_version_is_1_0():
    assert API_VERSION == "1.0"


def test_plugin_built_for_a_newer_api_is_refused_with_what_to_do(install):
    install(
        "ember-foo",
        "0.3.0",
        {"ember.executors": {"foo": "fake_foo:Executor"}},
        modules={"fake_foo": "class Executor:\n    api_version = '2.0'\n"},
    )
    with pytest.raises(PluginVersionError) as info:
        load_component("executors", "foo")
    core_minor = ".".join(CORE_VERSION.split(".")[:2])
    assert str(info.value) == (
        f"ember-foo 0.3.0 (executors 'foo') was built for ember plugin API 2.0; this "
        f"ember-core {CORE_VERSION} accepts plugins built for API 1.0 up to 1.0. Install a "
        f"release of ember-foo built for ember-core {core_minor}, or upgrade ember-core."
    )
    rec = record("executors", "foo")
    assert rec.status.startswith("incompatible: built for ember plugin API 2.0")
    assert rec.problem and rec.api_version == "2.0" and rec.error == str(info.value)


def test_plugin_built_for_an_older_major_api_is_told_to_upgrade_itself(install):
    install(
        "ember-old",
        "0.0.1",
        {"ember.sinks": {"old": "fake_old:Sink"}},
        modules={"fake_old": "class Sink:\n    api_version = '0.5'\n"},
    )
    with pytest.raises(PluginVersionError, match="Install a newer release of ember-old"):
        load_component("sinks", "old")


def test_malformed_api_version_is_refused(install):
    install(
        "ember-odd",
        "1.0",
        {"ember.sinks": {"odd": "fake_odd:Sink"}},
        modules={"fake_odd": "class Sink:\n    api_version = 1.0\n"},
    )
    with pytest.raises(PluginVersionError, match=r"not of the form 'MAJOR\.MINOR'"):
        load_component("sinks", "odd")


def test_plugin_without_api_version_is_taken_as_built_for_1_0(install):
    install(
        "ember-plain",
        "1.0",
        {"ember.sinks": {"plain": "fake_plain:Sink"}},
        modules={"fake_plain": "class Sink: pass\n"},
    )
    assert load_component("sinks", "plain").__name__ == "Sink"
    assert record("sinks", "plain").api_version == "1.0"


# --------------------------------------------------------------------------- list_plugins


class Delivery(enum.Enum):
    AT_LEAST_ONCE = "at-least-once"


def test_list_plugins_reports_distribution_version_target_api_and_delivery(install):
    install(
        "ember-fake-mq",
        "0.4.1",
        {
            "ember.sources": {"mq": "fake_mq:MQSource"},
            "ember.sinks": {"mq": "fake_mq:MQSink", "mqueue": "fake_mq:MQSink"},
        },
        modules={
            "fake_mq": """
                import enum
                class Delivery(enum.Enum):
                    AT_LEAST_ONCE = "at-least-once"
                class MQSource:
                    api_version = "1.0"
                    delivery = Delivery.AT_LEAST_ONCE
                class MQSink:
                    delivery = "idempotent-per-batch-time"
            """
        },
    )
    source = record("sources", "mq")
    assert source == PluginRecord(
        kind="sources",
        name="mq",
        distribution="ember-fake-mq",
        version="0.4.1",
        target="fake_mq:MQSource",
        api_version="1.0",
        delivery="at-least-once",
        status="ok",
        error=None,
        hooks=(),
        aliases=(),
    )
    sink = record("sinks", "mq")
    assert sink.delivery == "idempotent-per-batch-time"
    assert sink.aliases == ("mqueue",)


def test_serializers_have_no_delivery_and_core_plugins_are_builtin():
    pickle_record = record("serializers", "pickle")
    assert pickle_record.delivery is None
    assert pickle_record.status == "ok"
    assert pickle_record.distribution == "ember-pickle"
    assert all(
        r.status == "builtin" or r.problem
        for r in list_plugins(kinds=["executors"])
        if r.distribution == "ember-core"
    )


def test_broken_plugin_is_listed_as_broken_without_stopping_the_listing(install):
    install(
        "ember-fake-twit",
        "0.1.0",
        {"ember.sources": {"twit": "fake_twit:Source"}},
        modules={"fake_twit": "import tweepy_is_not_installed_here\n"},
    )
    records = list_plugins()
    (broken,) = [r for r in records if r.name == "twit"]
    assert broken.status == (
        "broken: ModuleNotFoundError: No module named 'tweepy_is_not_installed_here'"
    )
    assert broken.problem
    assert broken.error.startswith("Traceback (most recent call last):")
    assert "fake_twit.py" in broken.error
    assert any(r.name == "pickle" and r.status == "ok" for r in records)


def test_list_plugins_without_loading_imports_nothing(install, tmp_path):
    marker = tmp_path / "imported"
    install(
        "ember-fake-lazy",
        "3.0",
        {"ember.sources": {"lazy": "fake_lazy:S"}, "ember.hooks": {"lazyhooks": "fake_lazyh"}},
        modules={
            "fake_lazy": canary(marker, "class S: pass\n"),
            "fake_lazyh": canary(marker),
        },
    )
    records = list_plugins(load=False)
    assert not marker.exists()
    assert "fake_lazy" not in sys.modules and "fake_lazyh" not in sys.modules
    lazy = next(r for r in records if r.name == "lazy")
    assert (lazy.status, lazy.api_version, lazy.distribution) == (
        "not loaded",
        None,
        "ember-fake-lazy",
    )
    assert [r.status for r in records if r.name == "lazyhooks"] == ["not loaded"]
    assert [r.status for r in records if r.kind == "hooks" and r.name == "defaults"] == ["builtin"]


def test_list_plugins_filters_by_kind_and_rejects_unknown_kinds():
    assert {r.kind for r in list_plugins(kinds=["serializers"])} == {"serializers"}
    with pytest.raises(ValueError):
        list_plugins(kinds=["nope"])


def test_record_json_form_has_the_stable_schema():
    data = record("serializers", "pickle").to_dict()
    assert list(data) == [
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
    assert json.loads(json.dumps(data)) == data


# --------------------------------------------------------------------------- hook plugins


HOOK_PLUGIN = """
    from ember import hookimpl

    CALLS = []

    @hookimpl
    def ember_job_started(job):
        CALLS.append(job)
"""


def hook_names(pm) -> set[str]:
    return {name for name, plugin in pm.list_name_plugin() if plugin is not None}


def test_hook_plugins_are_loaded_and_listed_with_their_hooks(install):
    install(
        "ember-fake-alpha",
        "1.0",
        {"ember.hooks": {"alpha": "fake_alpha"}},
        modules={"fake_alpha": HOOK_PLUGIN},
    )
    pm = get_plugin_manager()
    assert {"defaults", "alpha"} <= hook_names(pm)
    alpha = next(r for r in pm.records if r.name == "alpha")
    assert (alpha.status, alpha.hooks, alpha.distribution) == (
        "ok",
        ("ember_job_started",),
        "ember-fake-alpha",
    )


def test_ember_plugins_allow_list_loads_only_the_named_hook_plugins(install, monkeypatch, tmp_path):
    beta_marker = tmp_path / "beta-imported"
    install(
        "ember-fake-ab",
        "1.0",
        {"ember.hooks": {"alpha": "fake_alpha", "beta": "fake_beta"}},
        modules={"fake_alpha": HOOK_PLUGIN, "fake_beta": canary(beta_marker, HOOK_PLUGIN)},
    )
    monkeypatch.setenv("EMBER_PLUGINS", "alpha")
    pm = get_plugin_manager()
    assert "alpha" in hook_names(pm) and "beta" not in hook_names(pm)
    assert "defaults" in hook_names(pm)
    assert not beta_marker.exists()
    statuses = {r.name: r.status for r in list_plugins(kinds=["hooks"])}
    assert statuses["beta"] == "disabled: not in EMBER_PLUGINS"
    assert statuses["alpha"] == "ok"


def test_empty_ember_plugins_loads_no_external_hook_plugin_but_keeps_builtins(install, monkeypatch):
    install(
        "ember-fake-alpha",
        "1.0",
        {"ember.hooks": {"alpha": "fake_alpha"}},
        modules={"fake_alpha": HOOK_PLUGIN},
    )
    monkeypatch.setenv("EMBER_PLUGINS", "")
    assert hook_names(get_plugin_manager()) == {"defaults"}


def test_ember_plugins_also_accepts_distribution_names(install, monkeypatch):
    install(
        "ember-fake-alpha",
        "1.0",
        {"ember.hooks": {"alpha": "fake_alpha"}},
        modules={"fake_alpha": HOOK_PLUGIN},
    )
    monkeypatch.setenv("EMBER_PLUGINS", "ember-fake-alpha")
    assert "alpha" in hook_names(get_plugin_manager())


def test_disabled_hook_plugin_is_not_imported_and_cannot_be_registered_later(
    install, monkeypatch, tmp_path
):
    marker = tmp_path / "imported"
    install(
        "ember-fake-ab",
        "1.0",
        {"ember.hooks": {"alpha": "fake_alpha", "beta": "fake_beta"}},
        modules={"fake_alpha": HOOK_PLUGIN, "fake_beta": canary(marker, HOOK_PLUGIN)},
    )
    monkeypatch.setenv("EMBER_DISABLE_PLUGINS", " beta , gamma")
    pm = get_plugin_manager()
    assert "alpha" in hook_names(pm) and "beta" not in hook_names(pm)
    assert not marker.exists()
    assert pm.register(object(), name="beta") is None
    assert [r.status for r in pm.records if r.name == "beta"] == ["disabled: EMBER_DISABLE_PLUGINS"]


def test_builtin_hook_modules_cannot_be_disabled(monkeypatch, site):
    monkeypatch.setenv("EMBER_DISABLE_PLUGINS", "defaults")
    monkeypatch.setenv("EMBER_PLUGINS", "")
    assert "defaults" in hook_names(get_plugin_manager())


def test_broken_hook_plugin_is_logged_recorded_and_skipped(install, caplog):
    install(
        "ember-fake-bad",
        "0.9",
        {"ember.hooks": {"bad": "fake_bad", "alpha": "fake_alpha"}},
        modules={"fake_bad": "raise RuntimeError('boom at import')\n", "fake_alpha": HOOK_PLUGIN},
    )
    with caplog.at_level("WARNING", logger="ember.plugins"):
        pm = get_plugin_manager()
    assert "alpha" in hook_names(pm) and "bad" not in hook_names(pm)
    (bad,) = [r for r in pm.records if r.name == "bad"]
    assert bad.status == "broken: RuntimeError: boom at import"
    assert "fake_bad.py" in bad.error
    (logged,) = [r for r in caplog.records if "'bad'" in r.getMessage()]
    assert logged.exc_info is not None and "ember-fake-bad 0.9" in logged.getMessage()


def test_hook_plugin_implementing_an_unknown_hook_is_refused(install):
    install(
        "ember-fake-typo",
        "0.1",
        {"ember.hooks": {"typo": "fake_typo"}},
        modules={
            "fake_typo": """
                from ember import hookimpl
                @hookimpl
                def ember_job_startd(job):
                    pass
            """
        },
    )
    pm = get_plugin_manager()  # check_pending() passes: the plugin was taken out
    assert "typo" not in hook_names(pm)
    (typo,) = [r for r in pm.records if r.name == "typo"]
    assert typo.problem and "ember_job_startd" in typo.error and "ember_job_started" in typo.error


def test_hook_plugin_with_wrong_arguments_is_refused(install):
    install(
        "ember-fake-args",
        "0.1",
        {"ember.hooks": {"args": "fake_args"}},
        modules={
            "fake_args": """
                from ember import hookimpl
                @hookimpl
                def ember_job_started(job, extra):
                    pass
            """
        },
    )
    pm = get_plugin_manager()
    (args,) = [r for r in pm.records if r.name == "args"]
    assert args.status.startswith("broken: PluginValidationError")
    assert "args" not in hook_names(pm)


def test_hook_plugin_built_for_an_incompatible_api_is_not_registered(install):
    install(
        "ember-fake-future",
        "5.0",
        {"ember.hooks": {"future": "fake_future"}},
        modules={"fake_future": "api_version = '1.9'\n" + textwrap.dedent(HOOK_PLUGIN)},
    )
    pm = get_plugin_manager()
    assert "future" not in hook_names(pm)
    (future,) = [r for r in pm.records if r.name == "future"]
    assert future.status.startswith("incompatible: built for ember plugin API 1.9")


def test_two_hook_plugins_with_one_name_are_both_refused(install):
    install(
        "ember-fake-x",
        "1.0",
        {"ember.hooks": {"same": "fake_same_x"}},
        modules={"fake_same_x": HOOK_PLUGIN},
    )
    install(
        "ember-fake-y",
        "1.0",
        {"ember.hooks": {"same": "fake_same_y"}},
        modules={"fake_same_y": HOOK_PLUGIN},
    )
    pm = get_plugin_manager()
    assert "same" not in hook_names(pm)
    errors = [r.error for r in pm.records if r.name == "same"]
    assert len(errors) == 2 and all("ember-fake-x" in e and "ember-fake-y" in e for e in errors)


def test_get_plugin_manager_builds_a_new_manager_each_time(site):
    assert get_plugin_manager() is not get_plugin_manager()


def test_trace_hooks_logs_every_call(monkeypatch, site, caplog):
    from ember._hooks import Hooks
    from ember.events import JobInfo

    monkeypatch.setenv("EMBER_TRACE_HOOKS", "1")
    monkeypatch.setenv("EMBER_PLUGINS", "")  # only the built-ins: no installed hook plugin
    hooks = Hooks(get_plugin_manager())
    with caplog.at_level("INFO", logger="ember.hooks.trace"):
        hooks.job_started(JobInfo(1, "collect", (), 0.0))
    messages = [r.getMessage() for r in caplog.records if r.name == "ember.hooks.trace"]
    assert messages == [
        "ember_job_started(job) -> no implementation",
        "ember_job_started returned []",
    ]


# --------------------------------------------------------------------------- processes


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_import_ember_loads_no_plugin_and_starts_no_thread(tmp_path):
    marker = tmp_path / "imported"
    write_distribution(
        tmp_path,
        "ember-fake-hook",
        "1.0",
        {"ember.hooks": {"h": "fake_hook"}},
        modules={"fake_hook": canary(marker)},
    )
    result = run_python(
        "import sys, threading, ember, ember.plugins, ember.hookspecs, ember.cli\n"
        "print(threading.active_count())\n"
        "print(sorted(m for m in sys.modules if m.startswith(('stevedore', 'ember_', 'fake_'))))\n"
        "print(ember.hookimpl is ember.plugins.hookimpl)\n",
        PYTHONPATH=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["1", "[]", "True"]
    assert not marker.exists()


def test_a_stale_stevedore_entry_point_cache_does_not_hide_new_plugins(tmp_path):
    site_dir, cache = tmp_path / "site", tmp_path / "cache"
    target = {"ember.sources": {"first": "fake_first:S"}}
    dist_info = write_distribution(site_dir, "ember-fake-late", "1.0", target)
    eps_file = dist_info / "entry_points.txt"
    env = {"PYTHONPATH": str(site_dir), "XDG_CACHE_HOME": str(cache)}
    stevedore_names = (
        "from stevedore import ExtensionManager\n"
        "print(sorted(ep.name for ep in ExtensionManager('ember.sources').list_entry_points()"
        "             if ep.name.startswith(('first', 'second'))))"
    )
    assert run_python(stevedore_names, **env).stdout.strip() == "['first']"
    stat = eps_file.stat()
    eps_file.write_text("[ember.sources]\nfirst = fake_first:S\nsecond = fake_second:S\n")
    os.utime(eps_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same cache key as before
    # stevedore's own listing may now be stale (it is where its cache key does not change;
    # that depends on the environment), but ember reads the installed metadata itself.
    ember_names = (
        "from ember.plugins import list_plugins\n"
        "print(sorted(r.name for r in list_plugins(load=False, kinds=['sources'])"
        "             if r.distribution == 'ember-fake-late'))"
    )
    result = run_python(ember_names, **env)
    assert result.stdout.strip() == "['first', 'second']", result.stderr
