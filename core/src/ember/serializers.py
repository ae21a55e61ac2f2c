"""The serializer plugin contract.

A serializer turns records into bytes and back. ember uses it for blocks, shuffles, cached
partitions, checkpoints, the write-ahead log and object files. It is **not** used for closures:
functions always travel with cloudpickle.

Plugins register a subclass in the entry-point group ``ember.serializers``; the name a user
selects (``ember.serializer=pickle``) is the entry point's name.
"""

from __future__ import annotations

import pickle
import reprlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from ember.errors import SerializationError

__all__ = [
    "PickleFormatSerializer",
    "Serializer",
    "find_unserializable",
    "get_serializer",
    "unserializable_error",
]


class Serializer(ABC):
    """Bytes in, objects out, for single objects and for whole batches of records.

    Rules:

    - ``loads(dumps(x)) == x`` and ``loads_batch(dumps_batch(rs)) == list(rs)`` for every value
      the serializer claims to support, with the order of records kept.
    - A value that cannot be serialized raises :class:`ember.errors.SerializationError` (or a
      subclass of ``TypeError``/``ValueError``/``pickle.PicklingError``) naming the value's type;
      it never writes partial output.
    - Instances hold no per-call state and are safe to share between threads.
    - Instances are picklable (they are shipped to workers).
    """

    #: The user-visible name (the entry point's name).
    name: ClassVar[str]
    #: Bumped whenever bytes written by an older version can no longer be read.
    format_version: ClassVar[int] = 1
    #: The ember plugin API version this serializer was built for.
    api_version: ClassVar[str] = "1.0"

    @abstractmethod
    def dumps(self, obj: Any) -> bytes:
        """Serialize one object."""

    @abstractmethod
    def loads(self, data: bytes) -> Any:
        """Deserialize one object written by :meth:`dumps`."""

    def dumps_batch(self, records: Iterable[Any]) -> bytes:
        """Serialize a batch of records; the default serializes them as one list."""
        return self.dumps(list(records))

    def loads_batch(self, data: bytes) -> list[Any]:
        """Deserialize a batch written by :meth:`dumps_batch`, as a list in the same order."""
        return list(self.loads(data))


class PickleFormatSerializer(Serializer):
    """A serializer that writes pickle data with some pickler (``pickle``, ``cloudpickle``...).

    Subclasses set :attr:`name` and :attr:`advice` and implement :meth:`to_pickle`; reading is
    always :func:`pickle.loads`. A batch is pickled as one list — a single C-level pass, with
    objects shared between records written once — and read back without a copy. A value that
    cannot be pickled raises :class:`ember.errors.SerializationError` naming which record,
    which part of it and its type; a damaged payload raises instead of returning part of a
    batch.
    """

    #: What the user can do about a value this serializer cannot pickle (ends its errors).
    advice: ClassVar[str] = "make the object picklable (give it __getstate__/__reduce__)"

    @abstractmethod
    def to_pickle(self, obj: Any) -> bytes:
        """``obj`` pickled (raising whatever the pickler raises)."""

    def dumps(self, obj: Any) -> bytes:
        """Serialize one object.

        :raises ember.errors.SerializationError: the object (or a part of it) cannot be
            pickled; the message names its type and where it is.
        """
        try:
            return self.to_pickle(obj)
        except Exception as exc:
            raise unserializable_error(
                obj, exc, serializer=self.name, dumps=self.to_pickle, advice=self.advice
            ) from exc

    def loads(self, data: bytes) -> Any:
        """Deserialize one object written by :meth:`dumps`."""
        return pickle.loads(data)

    def dumps_batch(self, records: Iterable[Any]) -> bytes:
        """Serialize a batch of records (any iterable) as one pickled list.

        :raises ember.errors.SerializationError: a record cannot be pickled; the message says
            which record, which part of it, and its type.
        """
        batch = records if type(records) is list else list(records)
        try:
            return self.to_pickle(batch)
        except Exception as exc:
            raise unserializable_error(
                batch, exc, serializer=self.name, dumps=self.to_pickle, advice=self.advice,
                root="batch",
            ) from exc

    def loads_batch(self, data: bytes) -> list[Any]:
        """Deserialize a batch written by :meth:`dumps_batch`, in order, as a list."""
        batch = pickle.loads(data)
        if type(batch) is not list:
            raise SerializationError(
                f"the {self.name} serializer expected a batch (a pickled list) but the data "
                f"holds a {type(batch).__name__}; it was written by dumps(), not dumps_batch()."
            )
        return batch


_CACHE: dict[str, Serializer] = {}


def get_serializer(name: str) -> Serializer:
    """Return an instance of the installed serializer plugin ``name`` (cached per process).

    :raises ember.errors.PluginNotFoundError: when no serializer of that name is installed.
    """
    ser = _CACHE.get(name)
    if ser is None:
        from ember.plugins import load_component

        ser = _CACHE[name] = load_component("serializers", name)()
    return ser


# --------------------------------------------------------------------------- errors

_OS_RESOURCE_ADVICE = (
    "keep plain data in records: a lock, socket, thread, process or open file is an "
    "operating-system resource that no serializer can ship to another process, so create it "
    "inside the task that uses it (for example in mapPartitions or foreachPartition)"
)
_MAX_DEPTH = 40
_MAX_CHILDREN = 10_000


def _os_resource_types() -> tuple[type, ...]:
    import io
    import socket
    import threading

    return (
        type(threading.Lock()),
        type(threading.RLock()),
        threading.Thread,
        threading.Condition,
        threading.Event,
        threading.Semaphore,
        socket.socket,
        io.IOBase,
    )


def _children(value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, (list, tuple)):
        return ((f"[{i}]", item) for i, item in enumerate(value))
    if isinstance(value, dict):

        def items() -> Iterable[tuple[str, Any]]:
            for key, item in value.items():
                yield f" (key {reprlib.repr(key)})", key
                yield f"[{reprlib.repr(key)}]", item

        return items()
    if isinstance(value, (set, frozenset)):
        return ((f" (element {reprlib.repr(item)})", item) for item in value)
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict) and not isinstance(value, type):
        return ((f".{name}", item) for name, item in attributes.items())
    return ()


def find_unserializable(value: Any, dumps: Callable[[Any], Any]) -> tuple[str, Any]:
    """Find the innermost part of ``value`` that ``dumps`` fails on.

    Walks lists, tuples, dicts, sets and object attributes, descending into the first child
    that fails on its own. For error messages only: it calls ``dumps`` on parts of the value.

    :param value: a value ``dumps(value)`` raised for.
    :param dumps: the serializing function.
    :returns: ``(path, culprit)``: a path such as ``"[3]['conn']"`` (``""`` for the value
        itself) and the innermost failing object (``value`` itself when no part fails alone).
    """
    path, current = "", value
    for _ in range(_MAX_DEPTH):
        for index, (step, child) in enumerate(_children(current)):
            if index >= _MAX_CHILDREN:
                return path, current
            try:
                dumps(child)
            except Exception:
                path, current = path + step, child
                break
        else:
            return path, current
    return path, current


def unserializable_error(
    value: Any,
    exc: BaseException,
    *,
    serializer: str,
    dumps: Callable[[Any], Any],
    advice: str,
    root: str = "value",
) -> SerializationError:
    """Build the :class:`~ember.errors.SerializationError` for a value that cannot be serialized.

    The message names the serializer, the type of the innermost failing object and where it
    sits, the underlying error, and what to do. Serializer plugins raise it ``from`` the
    original exception.

    :param value: the value (or batch, as a list) that failed.
    :param exc: the exception the serializer raised.
    :param serializer: the serializer's name (``"pickle"``).
    :param dumps: the serializing function, to locate the failing part.
    :param advice: what to do about it, for this serializer; replaced by advice about
        operating-system resources when the culprit is a lock, socket, thread or file.
    :param root: how to call ``value`` in the message (``"value"``, or ``"batch"``).
    """
    path, culprit = find_unserializable(value, dumps)
    kind = type(culprit)
    type_name = kind.__qualname__
    if kind.__module__ != "builtins":
        type_name = f"{kind.__module__}.{kind.__qualname__}"
    where = f" at {root}{path}" if path else ""
    if isinstance(culprit, _os_resource_types()):
        advice = _OS_RESOURCE_ADVICE
    detail = str(exc).strip() or type(exc).__name__
    return SerializationError(
        f"the {serializer} serializer cannot serialize a value of type {type_name!r}{where}: "
        f"{detail}. To fix it: {advice}."
    )
