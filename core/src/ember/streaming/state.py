"""``StateSpec`` and ``State``: the arguments of ``DStream.mapWithState``.

``mapWithState`` keeps a state per key and calls a mapping function once for every new
record of the key — not for every key on every batch, as ``updateStateByKey`` does — so a
batch costs in proportion to its own data, not to the size of the state.

>>> def running_count(key, value, state):
...     total = (state.get() if state.exists() else 0) + (value or 0)
...     state.update(total)
...     return (key, total)
>>> spec = StateSpec.function(running_count).numPartitions(4).timeout(3600)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["State", "StateSpec"]

_MISSING = object()


class State:
    """The state of one key, given to the mapping function of ``mapWithState``."""

    __slots__ = ("_defined", "_removed", "_timing_out", "_updated", "_value")

    def __init__(self, value: Any = _MISSING, timing_out: bool = False) -> None:
        self._defined = value is not _MISSING
        self._value = None if value is _MISSING else value
        self._updated = False
        self._removed = False
        self._timing_out = timing_out

    def exists(self) -> bool:
        """Whether the key has a state."""
        return self._defined

    def get(self) -> Any:
        """The state; ``ValueError`` when there is none (check :meth:`exists`)."""
        if not self._defined:
            raise ValueError("State.get(): this key has no state; check state.exists() first")
        return self._value

    def getOption(self) -> Any:
        """The state, or ``None`` when there is none."""
        return self._value if self._defined else None

    def update(self, newState: Any) -> None:
        """Set the key's state (not allowed while it is timing out or after remove)."""
        if self._removed:
            raise ValueError("State.update(): the state was already removed in this call")
        if self._timing_out:
            raise ValueError(
                "State.update(): the key is timing out and cannot be updated; return the "
                "final value instead"
            )
        self._value = newState
        self._defined = True
        self._updated = True

    def remove(self) -> None:
        """Remove the key's state (not allowed while it is timing out)."""
        if self._timing_out:
            raise ValueError("State.remove(): a timing-out key is removed anyway")
        if self._removed:
            raise ValueError("State.remove(): the state was already removed")
        self._removed = True
        self._defined = False
        self._value = None

    def isTimingOut(self) -> bool:
        """Whether this call is the last for a key idle for at least the timeout."""
        return self._timing_out

    def __repr__(self) -> str:
        return f"State({self._value!r})" if self._defined else "State(<none>)"


class StateSpec:
    """What ``mapWithState`` needs: the mapping function and options (Spark's ``StateSpec``).

    Build it with :meth:`function`, then chain the options.
    """

    def __init__(self, mappingFunction: Callable[[Any, Any, State], Any]) -> None:
        if not callable(mappingFunction):
            raise TypeError(
                f"StateSpec.function expects a function of (key, value, state), got "
                f"{mappingFunction!r}"
            )
        self.mapping_function = mappingFunction
        self.initial_rdd: Any = None
        self.num_partitions: int | None = None
        self.timeout_ms: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        # the initial state travels with the state stream (as records), not with the spec
        return {**self.__dict__, "initial_rdd": None}

    @staticmethod
    def function(mappingFunction: Callable[[Any, Any, State], Any]) -> StateSpec:
        """A spec calling ``mappingFunction(key, value, state)`` for every new record; when a
        key times out it is called once more with ``value=None`` and
        ``state.isTimingOut()`` true. What it returns becomes the mapped stream."""
        return StateSpec(mappingFunction)

    def initialState(self, rdd: Any) -> StateSpec:
        """Start from the ``(key, state)`` pairs of ``rdd``."""
        self.initial_rdd = rdd
        return self

    def numPartitions(self, numPartitions: int) -> StateSpec:
        """Keep the state in ``numPartitions`` partitions (default: defaultParallelism)."""
        if isinstance(numPartitions, bool) or not isinstance(numPartitions, int) \
                or numPartitions < 1:
            raise ValueError(f"numPartitions must be an integer >= 1, got {numPartitions!r}")
        self.num_partitions = numPartitions
        return self

    def timeout(self, idleDuration: float) -> StateSpec:
        """Remove keys that got no data for ``idleDuration`` seconds.

        Idle keys are found by a full pass over the state, done when the state is
        checkpointed (every checkpoint interval: set it with
        ``dstream.mapWithState(spec).checkpoint(seconds)``), so a key times out at the first
        checkpoint after it has been idle for ``idleDuration``.
        """
        from ember.streaming.dstream import duration_ms

        self.timeout_ms = duration_ms(idleDuration, "timeout")
        return self
