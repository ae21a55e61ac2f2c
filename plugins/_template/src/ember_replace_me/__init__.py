"""The ``replace_me`` source for ember (REPLACE_ME: one paragraph on what it reads, its
delivery guarantee and how it fails). See :class:`ReplaceMeSource` for every option.
"""

from __future__ import annotations

from ember_replace_me._receiver import ReplaceMeReceiver
from ember_replace_me._source import ReplaceMeSource

__all__ = ["ReplaceMeReceiver", "ReplaceMeSource"]
