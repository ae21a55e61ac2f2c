"""The serializer contract: what every ``ember.serializers`` plugin must do.

Subclass :class:`SerializerContract` and provide the ``serializer`` fixture::

    class TestMySerializer(SerializerContract):
        @pytest.fixture
        def serializer(self):
            return MySerializer()

Capability fixtures (override when the default does not describe your serializer):

- ``supports_functions`` (default ``False``): whether functions and lambdas round-trip.
- ``unserializable_value`` (default: a thread lock): a value the serializer must refuse.
"""

from __future__ import annotations

import datetime
import decimal
import math
import pickle
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import pytest

from ember.errors import SerializationError
from ember.plugins import api_version_fits
from ember.serializers import Serializer
from ember.testing.contracts.base import ContractTests

__all__ = ["SerializerContract"]


def _nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _nested_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for level in range(depth):
        value = {f"level{level}": value}
    return value


# (id, value): the awkward values every serializer must round-trip exactly, types included.
AWKWARD_VALUES: list[tuple[str, Any]] = [
    ("none", None),
    ("true", True),
    ("false", False),
    ("zero", 0),
    ("negative-int", -7),
    ("big-int", 2**200 + 1),
    ("big-negative-int", -(3**150)),
    ("float", 1.5),
    ("tiny-float", 5e-324),
    ("nan", float("nan")),
    ("inf", float("inf")),
    ("minus-inf", float("-inf")),
    ("minus-zero", -0.0),
    ("complex", complex(1.5, -2.0)),
    ("empty-str", ""),
    ("ascii-str", "hello, world"),
    ("unicode-str", "héllo wörld ✓ ß ∑ 日本語"),
    ("astral-str", "clef \U0001d11e emoji \U0001f600 \U0001f3f3\ufe0f\u200d\U0001f308"),
    ("str-with-nul", "a\x00b"),
    ("empty-bytes", b""),
    ("bytes-with-nuls", b"\x00\x01\x00\xff\x00"),
    ("all-byte-values", bytes(range(256))),
    ("bytearray", bytearray(b"\x00mutable\xff")),
    ("empty-list", []),
    ("empty-tuple", ()),
    ("empty-dict", {}),
    ("empty-set", set()),
    ("empty-frozenset", frozenset()),
    ("nested-tuples", (1, (2, (3, (4, ()))))),
    ("tuple-of-lists", ([1, 2], [], [[3]])),
    ("list-of-tuples", [(1, "a"), (2, "b"), ("k", None)]),
    ("dict-mixed-keys", {1: "one", "two": 2, (3, 4): [5], None: b"x", 2.5: frozenset({1})}),
    ("nested-dicts", {"a": {"b": {"c": [1, {"d": (2,)}]}}}),
    ("set", {1, "two", (3, 4)}),
    ("frozenset", frozenset({b"a", 1.5, "x"})),
    ("deep-list", _nested_list(200)),
    ("deep-dict", _nested_dict(100)),
    ("key-value-pair", ("word", 1)),
    (
        "datetime-utc",
        datetime.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=datetime.timezone.utc),
    ),
    ("date", datetime.date(1970, 1, 1)),
    ("timedelta", datetime.timedelta(days=-1, microseconds=1)),
    ("decimal", decimal.Decimal("1.10")),
    ("range", range(0, 10, 3)),
]


def _same(a: Any, b: Any) -> bool:
    """Deep equality that also requires equal types, treats NaN as equal to NaN and tells
    -0.0 from 0.0 (a serializer must give back exactly what it was given)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, complex):
        return _same(a.real, b.real) and _same(a.imag, b.imag)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _mib_blocks(count: int) -> list[bytes]:
    return [bytes([index % 251]) * (1 << 20) for index in range(count)]


class SerializerContract(ContractTests):
    """The rules of :class:`ember.serializers.Serializer`, as tests.

    Required fixture: ``serializer``. Capability fixtures: ``supports_functions``,
    ``unserializable_value``.
    """

    __ember_contract__: ClassVar[bool] = True

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def serializer(self) -> Serializer:
        """Return a ready-to-use instance of the serializer under test.

        It must be a :class:`ember.serializers.Serializer` instance, built exactly as ember
        builds it (the entry point's class called with no arguments), e.g.
        ``return MySerializer()``.
        """
        raise NotImplementedError(
            "a SerializerContract subclass must define the `serializer` fixture, returning an "
            "instance of the serializer under test (e.g. `return MySerializer()`)"
        )

    @pytest.fixture
    def supports_functions(self) -> bool:
        """Return whether the serializer round-trips functions and lambdas (default False).

        When ``False``, the contract requires a :class:`ember.errors.SerializationError` for a
        lambda instead.
        """
        return False

    @pytest.fixture
    def unserializable_value(self) -> Any:
        """Return a value the serializer must refuse (default: a thread lock).

        Override it only if the serializer can serialize locks; return something else it
        cannot serialize.
        """
        return threading.Lock()

    # ------------------------------------------------------------------ declarations

    def test_serializer_is_an_ember_serializer(self, serializer: Serializer) -> None:
        assert isinstance(serializer, Serializer)

    def test_declares_a_name_and_an_integer_format_version(self, serializer: Serializer) -> None:
        assert isinstance(serializer.name, str) and serializer.name
        assert serializer.name == serializer.name.strip().lower(), "names are lowercase"
        assert isinstance(serializer.format_version, int) and serializer.format_version >= 1

    def test_declares_an_api_version_this_ember_core_accepts(self, serializer: Serializer) -> None:
        declared = getattr(serializer, "api_version", "1.0")
        assert api_version_fits(declared), f"api_version {declared!r} does not fit this ember-core"

    def test_instance_is_picklable_and_the_copy_still_works(self, serializer: Serializer) -> None:
        copy = pickle.loads(pickle.dumps(serializer))
        assert type(copy) is type(serializer)
        assert copy.loads(serializer.dumps(("a", 1))) == ("a", 1)
        assert serializer.loads_batch(copy.dumps_batch([1, 2])) == [1, 2]

    # ------------------------------------------------------------------ single objects

    def test_dumps_returns_bytes(self, serializer: Serializer) -> None:
        assert type(serializer.dumps({"k": [1, 2]})) is bytes

    @pytest.mark.parametrize(
        ("value"), [v for _, v in AWKWARD_VALUES], ids=[i for i, _ in AWKWARD_VALUES]
    )
    def test_awkward_value_round_trips_exactly(self, serializer: Serializer, value: Any) -> None:
        assert _same(serializer.loads(serializer.dumps(value)), value)

    def test_single_object_larger_than_50_mb_round_trips(self, serializer: Serializer) -> None:
        value = ("big", b"\x00\xffember" * (9 * (1 << 20)))  # 63 MiB
        back = serializer.loads(serializer.dumps(value))
        assert back[0] == "big" and back[1] == value[1]

    # ------------------------------------------------------------------ batches

    def test_dumps_batch_returns_bytes(self, serializer: Serializer) -> None:
        assert type(serializer.dumps_batch([1, "a"])) is bytes

    def test_batch_of_awkward_values_round_trips_in_order(self, serializer: Serializer) -> None:
        records = [v for _, v in AWKWARD_VALUES]
        back = serializer.loads_batch(serializer.dumps_batch(records))
        assert type(back) is list
        assert len(back) == len(records)
        for index, (got, want) in enumerate(zip(back, records, strict=True)):
            assert _same(got, want), f"record {index} ({AWKWARD_VALUES[index][0]}) changed"

    def test_empty_batch_round_trips_to_an_empty_list(self, serializer: Serializer) -> None:
        assert serializer.loads_batch(serializer.dumps_batch([])) == []

    def test_batch_of_one_record_keeps_it_a_record(self, serializer: Serializer) -> None:
        for record in ([1, 2], (), None, [[]]):
            assert _same(serializer.loads_batch(serializer.dumps_batch([record])), [record])

    def test_dumps_batch_accepts_any_iterable_including_a_generator(
        self, serializer: Serializer
    ) -> None:
        def generate() -> Iterator[tuple[int, str]]:
            for i in range(1000):
                yield (i, str(i))

        assert serializer.loads_batch(serializer.dumps_batch(generate())) == list(generate())
        assert serializer.loads_batch(serializer.dumps_batch(iter(range(5)))) == [0, 1, 2, 3, 4]
        assert serializer.loads_batch(serializer.dumps_batch((1, 2))) == [1, 2]

    def test_many_records_keep_their_order(self, serializer: Serializer) -> None:
        records = [(i % 7, f"word{i}") for i in range(100_000)]
        assert serializer.loads_batch(serializer.dumps_batch(records)) == records

    def test_records_sharing_one_object_come_back_equal(self, serializer: Serializer) -> None:
        shared = {"shared": list(range(10))}
        records = [shared, shared, {"other": shared}]
        back = serializer.loads_batch(serializer.dumps_batch(records))
        assert back == records

    def test_batch_larger_than_50_mb_round_trips(self, serializer: Serializer) -> None:
        records: list[Any] = _mib_blocks(52)
        records += [("k", i) for i in range(10_000)]
        data = serializer.dumps_batch(records)
        assert len(data) >= 50 * (1 << 20)
        back = serializer.loads_batch(data)
        assert len(back) == len(records)
        assert back == records

    def test_single_and_batch_forms_can_be_used_on_the_same_instance(
        self, serializer: Serializer
    ) -> None:
        one = serializer.dumps(("x", 1))
        many = serializer.dumps_batch([("x", 1), ("y", 2)])
        assert serializer.loads(one) == ("x", 1)
        assert serializer.loads_batch(many) == [("x", 1), ("y", 2)]

    def test_truncated_batch_raises_instead_of_returning_part_of_it(
        self, serializer: Serializer
    ) -> None:
        data = serializer.dumps_batch([("record", i) for i in range(1000)])
        for cut in (len(data) // 2, len(data) - 1):
            with pytest.raises(Exception):  # noqa: B017 - any error will do; no partial list
                serializer.loads_batch(data[:cut])

    # ------------------------------------------------------------------ errors

    def test_unserializable_value_raises_serialization_error_naming_its_type(
        self, serializer: Serializer, unserializable_value: Any
    ) -> None:
        with pytest.raises(SerializationError) as info:
            serializer.dumps(unserializable_value)
        assert type(unserializable_value).__name__ in str(info.value)

    def test_unserializable_record_in_a_batch_raises_serialization_error_naming_its_type(
        self, serializer: Serializer, unserializable_value: Any
    ) -> None:
        records = [1, "two", {"nested": [3, unserializable_value]}]
        with pytest.raises(SerializationError) as info:
            serializer.dumps_batch(records)
        assert type(unserializable_value).__name__ in str(info.value)

    def test_serializer_still_works_after_refusing_a_value(
        self, serializer: Serializer, unserializable_value: Any
    ) -> None:
        with pytest.raises(SerializationError):
            serializer.dumps_batch([1, unserializable_value])
        assert serializer.loads_batch(serializer.dumps_batch([1, 2, 3])) == [1, 2, 3]

    def test_functions_round_trip_or_are_refused_with_serialization_error(
        self, serializer: Serializer, supports_functions: bool
    ) -> None:
        offset = 41
        function: Callable[[int], int] = lambda x: x + offset  # noqa: E731
        if supports_functions:
            assert serializer.loads(serializer.dumps(function))(1) == 42
            (back,) = serializer.loads_batch(serializer.dumps_batch([function]))
            assert back(1) == 42
        else:
            with pytest.raises(SerializationError) as info:
                serializer.dumps(function)
            assert "function" in str(info.value)

    # ------------------------------------------------------------------ sharing

    def test_one_instance_is_safe_to_share_between_threads(self, serializer: Serializer) -> None:
        def work(seed: int) -> bool:
            for i in range(200):
                records = [(seed, i, str(i) * (i % 5))]
                if serializer.loads_batch(serializer.dumps_batch(records)) != records:
                    return False
                if serializer.loads(serializer.dumps((seed, i))) != (seed, i):
                    return False
            return True

        with ThreadPoolExecutor(max_workers=4) as pool:
            assert all(pool.map(work, range(8)))
