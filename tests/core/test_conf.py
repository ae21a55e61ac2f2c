"""``Conf``: setting and reading values, typed getters, ``spark.*`` aliases, hook defaults."""

from __future__ import annotations

import pytest
from ember import Conf, Context
from ember.conf import normalize_key, parse_duration


def test_spark_keys_are_aliases_of_ember_keys():
    conf = Conf().set("spark.app.name", "a").set("ember.streaming.blockInterval", "200ms")
    assert conf.get("ember.app.name") == "a"
    assert conf.get("spark.app.name") == "a"
    assert conf.get("spark.streaming.blockInterval") == "200ms"
    assert conf.contains("spark.streaming.blockInterval")
    assert "ember.app.name" in conf
    assert conf.getAll() == [("ember.app.name", "a"), ("ember.streaming.blockInterval", "200ms")]
    conf.set("ember.app.name", "b")
    assert conf.get("spark.app.name") == "b"  # one value, two names
    assert normalize_key("spark.x.y") == "ember.x.y"
    assert normalize_key("other.key") == "other.key"
    with pytest.raises(TypeError, match="non-empty strings"):
        normalize_key("")


def test_get_returns_strings_like_pyspark():
    conf = Conf().set("ember.a", 3).set("ember.b", True).set("ember.c", False)
    assert conf.get("ember.a") == "3"
    assert conf.get("ember.b") == "true"
    assert conf.get("ember.c") == "false"
    assert conf.get("ember.missing") is None
    assert conf.get("ember.missing", "fallback") == "fallback"
    assert conf.get("ember.a", "fallback") == "3"


def test_unset_keys_fall_back_to_the_declared_defaults():
    conf = Conf()
    assert conf.getInt("ember.task.maxFailures") == 4
    assert conf.getInt("spark.task.maxFailures") == 4
    assert conf.get("ember.serializer") == "pickle"
    assert not conf.contains("ember.task.maxFailures")  # a default is not a set value
    assert conf.getAll() == []
    conf.set("spark.task.maxFailures", "7")
    assert conf.getInt("ember.task.maxFailures") == 7
    conf.unset("ember.task.maxFailures")
    assert conf.getInt("ember.task.maxFailures") == 4
    assert conf.getInt("ember.task.maxFailures", 9) == 9  # an explicit default wins


def test_typed_getters():
    conf = Conf(pairs=[
        ("ember.i", "12"), ("ember.i2", 3.0), ("ember.f", "0.25"),
        ("ember.t", "TRUE"), ("ember.y", "yes"), ("ember.off", "off"), ("ember.zero", "0"),
        ("ember.d1", "200ms"), ("ember.d2", "10s"), ("ember.d3", "2min"), ("ember.d4", "1h"),
        ("ember.d5", 5), ("ember.d6", "1.5"),
    ])
    assert conf.getInt("ember.i") == 12
    assert conf.getInt("ember.i2") == 3
    assert conf.getFloat("ember.f") == 0.25
    assert conf.getFloat("ember.i") == 12.0
    assert conf.getBoolean("ember.t") is True
    assert conf.getBoolean("ember.y") is True
    assert conf.getBoolean("ember.off") is False
    assert conf.getBoolean("ember.zero") is False
    assert conf.getDuration("ember.d1") == pytest.approx(0.2)
    assert conf.getDuration("ember.d2") == 10.0
    assert conf.getDuration("ember.d3") == 120.0
    assert conf.getDuration("ember.d4") == 3600.0
    assert conf.getDuration("ember.d5") == 5.0
    assert conf.getDuration("ember.d6") == 1.5
    assert conf.getInt("ember.none") is None
    assert conf.getBoolean("ember.none", True) is True
    assert conf.getDuration("ember.none", "3s") == 3.0


@pytest.mark.parametrize(
    ("value", "getter", "message"),
    [
        ("4.5", "getInt", "configuration ember.k must be a whole number, got '4.5'"),
        ("four", "getInt", "must be a whole number, got 'four'"),
        ("fast", "getFloat", "configuration ember.k must be a number, got 'fast'"),
        ("maybe", "getBoolean", "configuration ember.k must be true or false, got 'maybe'"),
        ("soon", "getDuration", "ember.k must be a duration such as 0.5, '200ms'"),
        ("10 parsecs", "getDuration", "got '10 parsecs'"),
    ],
)
def test_bad_values_get_messages_naming_the_key_and_the_expected_form(value, getter, message):
    conf = Conf().set("spark.k", value)
    with pytest.raises(ValueError) as info:
        getattr(conf, getter)("spark.k")
    assert message in str(info.value)


def test_parse_duration_refuses_booleans():
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(True, "ember.x")


def test_setters_copy_and_debug_string():
    conf = Conf().setMaster("local[2]").setAppName("app")
    conf.setIfMissing("ember.app.name", "ignored").setIfMissing("spark.new", "1")
    conf.setAll([("ember.a", "x"), ("spark.b", "y")])
    conf.setExecutorEnv("VAR", "1").setExecutorEnv(pairs=[("OTHER", "2")])
    assert conf.get("ember.master") == "local[2]"
    assert conf.get("ember.app.name") == "app"
    assert conf.get("ember.new") == "1"
    assert conf.get("ember.executorEnv.VAR") == "1"
    assert conf.get("ember.executorEnv.OTHER") == "2"
    copy = conf.copy()
    copy.set("ember.a", "changed")
    assert conf.get("ember.a") == "x"
    text = conf.toDebugString()
    assert "ember.master=local[2]" in text.splitlines()
    assert "ember.b=y" in text.splitlines()
    assert "Conf(" in repr(conf)


def test_a_context_reads_its_conf_and_hands_out_copies():
    conf = Conf().setMaster("inline").setAppName("from-conf").set("spark.task.maxFailures", 2)
    with Context(conf=conf) as ctx:
        assert ctx.master == "inline"
        assert ctx.appName == "from-conf"
        got = ctx.getConf()
        assert got.getInt("ember.task.maxFailures") == 2
        got.set("ember.task.maxFailures", 9)
        assert ctx.getConf().getInt("ember.task.maxFailures") == 2
    conf.set("ember.app.name", "changed later")  # the context took a copy
    with Context("inline", "explicit", conf) as ctx:
        assert ctx.appName == "explicit"  # arguments override the conf


@pytest.mark.parametrize("bad", ["x", "0", "-1"])
def test_a_bad_max_failures_is_refused_when_the_context_starts(bad):
    conf = Conf().set("spark.task.maxFailures", bad)
    with pytest.raises(ValueError, match=r"ember\.task\.maxFailures"):
        Context("inline", "bad", conf)
    with Context("inline", "fine") as ctx:  # nothing was left active
        assert ctx.parallelize([1]).count() == 1


def test_a_context_refuses_a_conf_of_the_wrong_type():
    with pytest.raises(TypeError, match=r"conf must be an ember\.Conf"):
        Context("inline", conf={"ember.master": "inline"})
