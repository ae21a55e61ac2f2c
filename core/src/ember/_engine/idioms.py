"""Recognizing the counting idiom, so it can run at C speed with exactly the same result.

``rdd.map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)`` (or ``operator.add``) counts
keys; so does ``countByValue``. When the map function is exactly a unit-pair lambda — its
bytecode and constants are those of ``lambda x: (x, 1)``, with the constant an ``int`` — and
the reduce function is exactly addition, the map side can count the bare keys with
``collections.Counter`` (a loop in C) instead of building a tuple per record and merging
them in a Python loop. The counts are the same integers either way; only the work changes.
Anything else — another constant, a closure, a default argument — takes the general path.
"""

from __future__ import annotations

import operator
import types
from typing import Any

__all__ = ["is_addition", "is_unit_pair"]

_UNIT_PAIR = (lambda x: (x, 1)).__code__
_ADD = (lambda a, b: a + b).__code__


def _same_code(code: types.CodeType, ref: types.CodeType) -> bool:
    return (
        code.co_code == ref.co_code
        and code.co_argcount == ref.co_argcount
        and code.co_kwonlyargcount == 0
        and code.co_flags & 0x0C == 0  # no *args / **kwargs
        and len(code.co_consts) == len(ref.co_consts)
        and all(type(a) is type(b) and a == b for a, b in zip(code.co_consts, ref.co_consts,
                                                               strict=True))
    )


def _plain_function(f: Any) -> types.CodeType | None:
    if not isinstance(f, types.FunctionType) or f.__closure__ or f.__defaults__:
        return None
    return f.__code__


def is_unit_pair(f: Any) -> bool:
    """Whether ``f`` is exactly ``lambda x: (x, 1)`` (any argument name)."""
    code = _plain_function(f)
    return code is not None and _same_code(code, _UNIT_PAIR)


def is_addition(f: Any) -> bool:
    """Whether ``f`` is ``operator.add`` or exactly ``lambda a, b: a + b``."""
    if f is operator.add:
        return True
    code = _plain_function(f)
    return code is not None and _same_code(code, _ADD)
