"""The hook specification, the hook façade and configuration defaults.

There is one ``test_hook_<hook name>`` per hook (tests/docs/test_hooks.py checks that).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from importlib.metadata import version

import pytest
from ember import hookimpl, hookspecs
from ember._defaults import CORE_DEFAULTS
from ember._hooks import Hooks
from ember.errors import ConfigDefaultConflictError, PluginError
from ember.events import JobInfo, StageInfo, TaskInfo
from ember.plugins import get_plugin_manager, merged_config_defaults
from ember.testing.entrypoints import write_distribution

HOOK_NAMES = sorted(name for name, fn in vars(hookspecs).items() if hasattr(fn, "ember_spec"))
JOB = JobInfo(job_id=3, description="collect at demo.py:1", stage_ids=(0, 1), submission_time=1.0)
STAGE = StageInfo(
    stage_id=1, job_id=3, kind="result", name="PythonRDD[2] map", num_tasks=2, submission_time=1.5
)
TASK = TaskInfo(stage_id=1, partition=0, attempt=0, worker=None, launch_time=2.0)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for var in ("EMBER_PLUGINS", "EMBER_DISABLE_PLUGINS", "EMBER_TRACE_HOOKS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def hooks() -> Hooks:
    """A façade over a manager holding only ember-core's built-in hook modules."""
    return Hooks(get_plugin_manager(load_entry_points=False))


class Recorder:
    """A hook plugin recording every event it receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    @hookimpl
    def ember_context_started(self, context):
        self.calls.append(("context_started", context))

    @hookimpl
    def ember_context_stopped(self, context):
        self.calls.append(("context_stopped", context))

    @hookimpl
    def ember_job_started(self, job):
        self.calls.append(("job_started", job))

    @hookimpl
    def ember_job_completed(self, job):
        self.calls.append(("job_completed", job))

    @hookimpl
    def ember_stage_submitted(self, stage):
        self.calls.append(("stage_submitted", stage))

    @hookimpl
    def ember_stage_completed(self, stage):
        self.calls.append(("stage_completed", stage))

    @hookimpl
    def ember_task_started(self, task):
        self.calls.append(("task_started", task))

    @hookimpl
    def ember_task_completed(self, task):
        self.calls.append(("task_completed", task))


def assert_event(hooks: Hooks, hook_name: str, method: str, arg: object) -> None:
    """The hook is specified, and the façade method delivers ``arg`` to an implementation."""
    assert getattr(hooks.pm.hook, hook_name).spec is not None
    recorder = Recorder()
    hooks.register(recorder)
    assert hooks.implemented(hook_name)
    result = getattr(hooks, method)(arg)
    assert result is None
    assert recorder.calls == [(method, arg)]


# --------------------------------------------------------------------------- one test per hook


def test_hook_ember_config_defaults(hooks):
    class Mine:
        @hookimpl
        def ember_config_defaults(self):
            return {"ember.mine.port": 1883}

    hooks.register(Mine())
    defaults = hooks.config_defaults()
    assert defaults == {**CORE_DEFAULTS, "ember.mine.port": 1883}


def test_hook_ember_configure(hooks):
    seen = []

    class Early:
        @hookimpl
        def ember_configure(self, conf):
            seen.append(("early", conf))

    class Late:
        @hookimpl
        def ember_configure(self, conf):
            seen.append(("late", conf))

    conf = {"ember.master": "inline"}
    hooks.register(Early())
    hooks.configure(conf)
    hooks.register(Late())  # historic: registered after the call, still called
    assert seen == [("early", conf), ("late", conf)]


def test_hook_ember_add_cli_commands(hooks):
    class Commands:
        @hookimpl
        def ember_add_cli_commands(self, subparsers):
            hello = subparsers.add_parser("hello")
            hello.add_argument("--who", default="world")
            hello.set_defaults(func=lambda args: f"hello {args.who}")

    parser = argparse.ArgumentParser(prog="ember")
    sub = parser.add_subparsers()
    hooks.add_cli_commands(sub)
    hooks.register(Commands())  # historic
    args = parser.parse_args(["hello", "--who", "ember"])
    assert args.func(args) == "hello ember"


def test_hook_ember_report_header(hooks):
    class First:
        @hookimpl
        def ember_report_header(self, conf):
            return ["first: 1", f"conf: {conf}"]

    class Second:
        @hookimpl
        def ember_report_header(self):
            return "second: 2"

    class Silent:
        @hookimpl
        def ember_report_header(self, conf):
            return None

    assert hooks.report_header("c") == []
    hooks.register(First())
    hooks.register(Silent())
    hooks.register(Second())
    assert hooks.report_header("c") == ["first: 1", "conf: c", "second: 2"]


def test_hook_ember_context_started(hooks):
    assert_event(hooks, "ember_context_started", "context_started", object())


def test_hook_ember_context_stopped(hooks):
    assert_event(hooks, "ember_context_stopped", "context_stopped", object())


def test_hook_ember_job_started(hooks):
    assert_event(hooks, "ember_job_started", "job_started", JOB)


def test_hook_ember_job_completed(hooks):
    assert_event(hooks, "ember_job_completed", "job_completed", JOB)


def test_hook_ember_stage_submitted(hooks):
    assert_event(hooks, "ember_stage_submitted", "stage_submitted", STAGE)


def test_hook_ember_stage_completed(hooks):
    assert_event(hooks, "ember_stage_completed", "stage_completed", STAGE)


def test_hook_ember_task_started(hooks):
    assert_event(hooks, "ember_task_started", "task_started", TASK)


def test_hook_ember_task_completed(hooks):
    assert_event(hooks, "ember_task_completed", "task_completed", TASK)


# --------------------------------------------------------------------------- the specification


def test_the_specification_holds_the_foundation_hooks():
    assert set(HOOK_NAMES) >= {
        "ember_config_defaults",
        "ember_configure",
        "ember_add_cli_commands",
        "ember_report_header",
        "ember_context_started",
        "ember_context_stopped",
        "ember_job_started",
        "ember_job_completed",
        "ember_stage_submitted",
        "ember_stage_completed",
        "ember_task_started",
        "ember_task_completed",
    }


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_has_a_facade_method(name):
    method = getattr(Hooks, name.removeprefix("ember_"), None)
    assert callable(method), f"ember._hooks.Hooks has no method for {name}"


def test_every_facade_method_fires_a_specified_hook():
    passthrough = {"register", "unregister", "implemented"}
    methods = {n for n, m in vars(Hooks).items() if callable(m) and not n.startswith("_")}
    assert {f"ember_{n}" for n in methods - passthrough} == set(HOOK_NAMES)


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_docstring_follows_the_template(name):
    fn = getattr(hookspecs, name)
    doc = inspect.getdoc(fn) or ""
    assert doc.split("\n")[0].endswith("."), "a one-line summary first"
    for part in ("Called:", "Runs on: driver", "Flags:", ".. versionadded:: 0.1"):
        assert part in doc, f"{name}'s docstring lacks {part!r}"
    for param in inspect.signature(fn).parameters:
        assert f":param {param}:" in doc, f"{name}'s docstring does not describe {param!r}"
    returns = inspect.signature(fn).return_annotation not in ("None", None)
    assert (":returns:" in doc) is returns


def test_historic_hooks_are_exactly_configure_and_add_cli_commands():
    pm = get_plugin_manager(load_entry_points=False)
    historic = {name for name in HOOK_NAMES if getattr(pm.hook, name).is_historic()}
    assert historic == {"ember_configure", "ember_add_cli_commands"}


# --------------------------------------------------------------------------- the façade


def test_a_hook_without_implementation_never_reaches_pluggy(hooks):
    reached = []
    hooks.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: reached.append(name), lambda *a: None
    )
    hooks = Hooks(hooks.pm)  # the façade over the monitored manager
    hooks.task_started(TASK)
    hooks.task_completed(TASK)
    hooks.job_started(JOB)
    assert reached == []
    hooks.register(Recorder())
    hooks.task_started(TASK)
    assert reached == ["ember_task_started"]


def test_register_returns_the_name_and_unregister_stops_calls(hooks):
    recorder = Recorder()
    assert hooks.register(recorder, name="recorder") == "recorder"
    hooks.job_started(JOB)
    hooks.unregister(recorder)
    hooks.job_started(JOB)
    assert recorder.calls == [("job_started", JOB)]
    assert not hooks.implemented("ember_job_started")


def test_hooks_builds_its_own_manager_when_given_none(monkeypatch):
    monkeypatch.setenv("EMBER_PLUGINS", "")
    hooks = Hooks()
    assert hooks.pm.get_plugin("defaults") is not None


def test_an_error_in_an_implementation_reaches_the_caller(hooks):
    class Faulty:
        @hookimpl
        def ember_job_started(self, job):
            raise RuntimeError("plugin bug")

    hooks.register(Faulty())
    with pytest.raises(RuntimeError, match="plugin bug"):
        hooks.job_started(JOB)


def test_implementations_may_take_a_subset_of_the_arguments(hooks):
    seen = []

    class NoArgs:
        @hookimpl
        def ember_task_started(self):
            seen.append("called")

    hooks.register(NoArgs())
    hooks.task_started(TASK)
    assert seen == ["called"]


# --------------------------------------------------------------------------- entry points


def test_a_hook_plugin_installed_through_an_entry_point_is_called(tmp_path, monkeypatch):
    write_distribution(
        tmp_path,
        "ember-fake-listener",
        "0.3",
        {"ember.hooks": {"listener": "fake_listener"}},
        modules={
            "fake_listener": """
                from ember import hookimpl
                JOBS = []
                @hookimpl
                def ember_job_completed(job):
                    JOBS.append(job.job_id)
                @hookimpl
                def ember_config_defaults():
                    return {"ember.listener.enabled": True}
            """
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_listener", raising=False)
    try:
        hooks = Hooks(get_plugin_manager())
        hooks.job_completed(JOB)
        assert sys.modules["fake_listener"].JOBS == [3]
        assert hooks.config_defaults()["ember.listener.enabled"] is True
    finally:
        sys.modules.pop("fake_listener", None)


# --------------------------------------------------------------------------- config defaults


def test_core_defaults_hold_the_engine_keys():
    defaults = merged_config_defaults(get_plugin_manager(load_entry_points=False))
    assert defaults["ember.task.maxFailures"] == 4
    assert defaults["ember.serializer"] == "pickle"
    assert defaults["ember.local.dir"] == ""


def test_merged_defaults_are_a_fresh_dict_each_time(hooks):
    first = hooks.config_defaults()
    first["ember.serializer"] = "changed"
    assert hooks.config_defaults()["ember.serializer"] == "pickle"


def test_the_same_default_from_two_plugins_is_fine(hooks):
    class Agrees:
        @hookimpl
        def ember_config_defaults(self):
            return {"ember.serializer": "pickle", "ember.agrees.x": 1}

    hooks.register(Agrees())
    assert hooks.config_defaults()["ember.agrees.x"] == 1


def test_a_conflicting_default_is_an_error_naming_both_plugins(tmp_path, monkeypatch):
    write_distribution(
        tmp_path,
        "ember-fake-rival",
        "2.1",
        {"ember.hooks": {"rival": "fake_rival"}},
        modules={
            "fake_rival": """
                from ember import hookimpl
                @hookimpl
                def ember_config_defaults():
                    return {"ember.task.maxFailures": 10}
            """
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        pm = get_plugin_manager()
        with pytest.raises(ConfigDefaultConflictError) as info:
            merged_config_defaults(pm)
    finally:
        sys.modules.pop("fake_rival", None)
    message = str(info.value)
    assert "'ember.task.maxFailures'" in message
    assert f"plugin 'defaults' (ember-core {version('ember-core')}) sets 4" in message
    assert "plugin 'rival' (ember-fake-rival 2.1) sets 10" in message
    assert info.value.key == "ember.task.maxFailures"


def test_a_default_of_another_type_is_a_conflict(hooks):
    class Stringly:
        @hookimpl
        def ember_config_defaults(self):
            return {"ember.task.maxFailures": "4"}

    hooks.register(Stringly())
    with pytest.raises(ConfigDefaultConflictError, match="Stringly' sets '4'"):
        hooks.config_defaults()


@pytest.mark.parametrize(
    ("returned", "match"),
    [(["ember.x", 1], "returned list"), ({1: "x"}, "non-string configuration key 1")],
)
def test_defaults_that_are_not_a_dict_of_strings_are_refused(hooks, returned, match):
    class Wrong:
        @hookimpl
        def ember_config_defaults(self):
            return returned

    hooks.register(Wrong(), name="wrong")
    with pytest.raises(PluginError, match=match):
        hooks.config_defaults()


def test_returning_none_contributes_no_defaults(hooks):
    class Nothing:
        @hookimpl
        def ember_config_defaults(self):
            return None

    hooks.register(Nothing())
    assert hooks.config_defaults() == CORE_DEFAULTS
