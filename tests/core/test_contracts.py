"""The contract test kit itself: the no-override guard, and that the suites can fail."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from ember.testing.contracts import ContractTests, SerializerContract


def guard(cls: type) -> None:
    cls().test_no_overrides_DO_NOT_OVERRIDE()


def test_a_plain_subclass_passes_the_guard():
    class Plain(SerializerContract):
        @pytest.fixture
        def serializer(self):
            raise NotImplementedError

        def test_an_extra_test_of_the_plugin(self):
            pass

    guard(Plain)


def test_overriding_a_contract_test_fails_the_guard():
    class Overrides(SerializerContract):
        def test_dumps_returns_bytes(self, serializer):
            pass

    with pytest.raises(AssertionError, match=r"Overrides\.test_dumps_returns_bytes overrides"):
        guard(Overrides)


def test_deleting_a_contract_test_fails_the_guard():
    class Deletes(SerializerContract):
        test_dumps_returns_bytes = None

    with pytest.raises(AssertionError, match="removes the contract test"):
        guard(Deletes)


def test_an_override_marked_xfail_with_a_reason_passes_the_guard():
    class Excused(SerializerContract):
        @pytest.mark.xfail(reason="this format cannot hold bytes")
        def test_dumps_returns_bytes(self, serializer):
            raise NotImplementedError

    guard(Excused)


def test_an_xfail_without_a_reason_does_not_excuse_an_override():
    class Unexcused(SerializerContract):
        @pytest.mark.xfail
        def test_dumps_returns_bytes(self, serializer):
            raise NotImplementedError

    with pytest.raises(AssertionError, match=r"without @pytest\.mark\.xfail"):
        guard(Unexcused)


def test_overriding_the_guard_itself_is_refused_at_class_creation():
    with pytest.raises(TypeError, match="guard of ember's contract tests"):

        class Sneaky(SerializerContract):
            def test_no_overrides_DO_NOT_OVERRIDE(self):
                pass


def test_an_override_in_an_intermediate_class_is_found():
    class Middle(SerializerContract):
        def test_dumps_returns_bytes(self, serializer):
            pass

    class Leaf(Middle):
        pass

    with pytest.raises(AssertionError, match=r"Middle\.test_dumps_returns_bytes"):
        guard(Leaf)


def test_contract_suites_are_not_collected_on_their_own():
    assert not SerializerContract.__name__.startswith("Test")
    assert not ContractTests.__name__.startswith("Test")


def test_the_serializer_fixture_must_be_provided():
    fixture = SerializerContract.serializer
    assert "return" in (fixture.__doc__ or "")


def test_a_lossy_serializer_fails_the_serializer_contract(tmp_path):
    """A JSON serializer (tuples become lists, no sets, no bytes) must fail the suite."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_lossy.py").write_text(
        textwrap.dedent(
            """
            import json
            import pytest
            from ember.errors import SerializationError
            from ember.serializers import Serializer
            from ember.testing.contracts import SerializerContract

            class JsonSerializer(Serializer):
                name = "json"
                def dumps(self, obj):
                    try:
                        return json.dumps(obj).encode()
                    except TypeError as exc:
                        raise SerializationError(f"{type(obj).__name__}: {exc}") from exc
                def loads(self, data):
                    return json.loads(data)

            class TestJson(SerializerContract):
                @pytest.fixture
                def serializer(self):
                    return JsonSerializer()
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-x",
            "-k",
            "awkward_value_round_trips_exactly and nested-tuples",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout
