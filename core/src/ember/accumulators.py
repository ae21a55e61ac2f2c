"""Accumulators: variables that tasks only add to and the driver reads.

Updates made inside a task are kept by the task and merged into the driver's value when the
task succeeds, once per successful task, so retried or lost attempts never count twice for
updates made in actions.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Generic, TypeVar

__all__ = ["Accumulator", "AccumulatorParam"]

T = TypeVar("T")


class AccumulatorParam(Generic[T]):
    """How to add values of a type: ``zero(value)`` and ``addInPlace(value1, value2)``."""

    def zero(self, value: T) -> T:
        """The neutral element for the type of ``value``."""
        raise NotImplementedError

    def addInPlace(self, value1: T, value2: T) -> T:
        """Add ``value2`` to ``value1`` (may modify ``value1``) and return the sum."""
        raise NotImplementedError


class _NumberParam(AccumulatorParam[Any]):
    def zero(self, value: Any) -> Any:
        return type(value)(0) if not isinstance(value, bool) else 0

    def addInPlace(self, value1: Any, value2: Any) -> Any:
        return value1 + value2


class _ListParam(AccumulatorParam[list]):
    def zero(self, value: list) -> list:
        return []

    def addInPlace(self, value1: list, value2: list) -> list:
        value1.extend(value2)
        return value1


def default_param(value: Any) -> AccumulatorParam[Any]:
    """The parameter for ints, floats and complex numbers, and lists."""
    if isinstance(value, (int, float, complex)):
        return _NumberParam()
    if isinstance(value, list):
        return _ListParam()
    raise TypeError(
        f"no default AccumulatorParam for {type(value).__name__!r} values; pass "
        f"accumulator(value, accum_param) with an AccumulatorParam that defines zero and addInPlace"
    )


_registry_lock = threading.Lock()
_driver_accumulators: weakref.WeakValueDictionary[int, Accumulator[Any]] = (
    weakref.WeakValueDictionary()
)


def _rebuild(aid: int, zero: Any, param: AccumulatorParam[Any]) -> Accumulator[Any]:
    acc: Accumulator[Any] = Accumulator.__new__(Accumulator)
    acc.aid, acc._param, acc._value, acc._deserialized = aid, param, zero, True
    return acc


class Accumulator(Generic[T]):
    """A shared variable tasks add to with ``add`` or ``+=``; only the driver reads ``value``."""

    def __init__(self, aid: int, value: T, accum_param: AccumulatorParam[T]) -> None:
        self.aid = aid
        self._param = accum_param
        self._value = value
        self._deserialized = False
        with _registry_lock:
            _driver_accumulators[aid] = self

    def __reduce__(self):
        return (_rebuild, (self.aid, self._param.zero(self._value), self._param))

    @property
    def value(self) -> T:
        """The accumulated value (on the driver only)."""
        from ember._engine.worker import current_task

        if self._deserialized or current_task() is not None:
            raise RuntimeError(
                "Accumulator.value cannot be read inside a task; tasks can only add to it. "
                "Read it on the driver after the action completes."
            )
        return self._value

    @value.setter
    def value(self, value: T) -> None:
        from ember._engine.worker import current_task

        if self._deserialized or current_task() is not None:
            raise RuntimeError("Accumulator.value cannot be set inside a task")
        self._value = value

    def add(self, term: T) -> None:
        """Add ``term``: inside a task, to the task's update; on the driver, to the value."""
        from ember._engine.worker import current_task

        task = current_task()
        if task is None:
            self._value = self._param.addInPlace(self._value, term)
            return
        updates = task.accumulator_updates
        entry = updates.get(self.aid)
        current = entry[0] if entry is not None else self._param.zero(self._value)
        updates[self.aid] = (self._param.addInPlace(current, term), self._param)

    def __iadd__(self, term: T) -> Accumulator[T]:
        self.add(term)
        return self

    def __repr__(self) -> str:
        return f"Accumulator<id={self.aid}, value={self._value!r}>"


def merge_updates(updates: dict[int, Any]) -> None:
    """Merge one successful task's updates into the driver's accumulators.

    Under the registry lock: jobs run concurrently (one per streaming output operation), and
    two merges into one accumulator must not lose either update.
    """
    with _registry_lock:
        for aid, (delta, _param) in updates.items():
            acc = _driver_accumulators.get(aid)
            if acc is not None:
                acc._value = acc._param.addInPlace(acc._value, delta)
