"""The ``foreach`` sink: calls a function with each batch — behind ``foreachRDD`` and ``pprint``.

Registered from ember-core itself: ``foreachRDD`` is the primitive every other output
operation and the test kit stand on, so it cannot live in an optional distribution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ember.events import Time
from ember.rdd import RDD
from ember.sinks import Delivery, Sink

__all__ = ["ForeachSink", "time_and_rdd_function"]


def time_and_rdd_function(func: Callable[..., Any], what: str) -> Callable[[Any, RDD], Any]:
    """``func`` as a function of ``(time, rdd)``, accepting PySpark's one-argument form too."""
    import inspect

    if not callable(func):
        raise TypeError(f"{what} expects a function, got {func!r} of type {type(func).__name__}")
    try:
        params = [
            p for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        varargs = any(p.kind is p.VAR_POSITIONAL
                      for p in inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: assume func(rdd)
        params, varargs = [object()], False  # type: ignore[list-item]
    if len(params) >= 2 or (varargs and len(params) != 1):
        return func
    if len(params) == 1:
        return lambda _time, rdd: func(rdd)
    raise TypeError(
        f"{what} expects a function of (rdd) or of (time, rdd); {func!r} takes no argument"
    )


class ForeachSink(Sink):
    """Calls ``func(time, rdd)`` (time a local ``datetime``, as in PySpark) for every batch.

    The function runs on the driver; it is as idempotent as the user makes it.
    """

    name = "foreach"
    delivery = Delivery.AT_LEAST_ONCE

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = time_and_rdd_function(func, "foreachRDD")
        self.label = getattr(func, "__qualname__", type(func).__name__)

    def write_batch(self, rdd: RDD, batch_time_ms: int) -> None:
        self.func(Time(batch_time_ms).to_datetime(), rdd)

    def describe(self) -> str:
        return f"foreachRDD({self.label})"
