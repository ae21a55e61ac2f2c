"""``Accumulator`` and ``AccumulatorParam``: PySpark's accumulators (ember's own)."""

from ember.accumulators import Accumulator, AccumulatorParam

__all__ = ["Accumulator", "AccumulatorParam"]
