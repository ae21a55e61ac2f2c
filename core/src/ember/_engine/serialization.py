"""Explaining why a function cannot be sent to a worker.

cloudpickle's own error says *what* type failed ("cannot pickle '_thread.lock' object") but
not *where* it came from. This walks the function's closure cells, referenced globals and
default arguments — recursively through nested functions and ember's own pipeline objects —
and names the variable that holds the culprit.
"""

from __future__ import annotations

import pickle
import types
from typing import Any

import cloudpickle

__all__ = ["explain_unpicklable"]


def _picklable(obj: Any) -> bool:
    try:
        cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        return True
    except Exception:  # any failure means "not picklable"
        return False


def _children(obj: Any) -> list[tuple[str, Any, Any]]:
    """(variable name, value, owning function) for the things ``obj`` refers to."""
    out: list[tuple[str, Any, Any]] = []
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        for name, cell in zip(code.co_freevars, obj.__closure__ or (), strict=False):
            try:
                out.append((name, cell.cell_contents, obj))
            except ValueError:
                continue
        for name in code.co_names:
            if name in obj.__globals__:
                value = obj.__globals__[name]
                if not isinstance(value, types.ModuleType):
                    out.append((name, value, obj))
        for i, default in enumerate(obj.__defaults__ or ()):
            out.append((f"default argument {i}", default, obj))
    elif isinstance(obj, types.MethodType):
        out.append(("self", obj.__self__, obj.__func__))
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("ember."):
        out.extend((k, v, obj) for k, v in vars(obj).items())
    elif isinstance(obj, (list, tuple)):
        out.extend((f"item {i}", v, obj) for i, v in enumerate(obj))
    return out


def _describe(fn: Any) -> str:
    if isinstance(fn, types.FunctionType):
        code = fn.__code__
        return f"function {fn.__qualname__} ({code.co_filename}:{code.co_firstlineno})"
    return repr(fn)


def _find(obj: Any, depth: int, seen: set[int]) -> tuple[str, Any, Any] | None:
    if depth > 8 or id(obj) in seen:
        return None
    seen.add(id(obj))
    for name, value, owner in _children(obj):
        if _picklable(value):
            continue
        deeper = _find(value, depth + 1, seen)
        return deeper or (name, value, owner)
    return None


def explain_unpicklable(fn: Any, exc: BaseException) -> str:
    """A message naming what in ``fn`` could not be pickled and how to fix it."""
    found = _find(fn, 0, set())
    if found is None:
        return (
            f"could not serialize a task function to send it to the workers: {exc}. "
            f"Functions passed to RDD and DStream operations must be picklable with "
            f"cloudpickle; run with master 'inline' to debug without serialization."
        )
    name, value, owner = found
    return (
        f"could not serialize {_describe(owner)} to send it to the workers: it refers to "
        f"{name!r}, a {type(value).__module__}.{type(value).__qualname__}, which cannot be "
        f"pickled ({exc}). Create such objects inside the function that uses them (for "
        f"connections, once per partition with foreachPartition/mapPartitions) instead of "
        f"capturing them from the driver, or pass only plain data."
    )
