"""Where in the user's program an operation was called, for job and operation names."""

from __future__ import annotations

import os
import sys

__all__ = ["callsite"]

_EMBER_DIR = os.path.dirname(os.path.abspath(__file__))


def callsite(action: str) -> str:
    """``"<action> at <file>:<line>"`` for the innermost caller outside the ember package."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_EMBER_DIR):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return action
    return f"{action} at {os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
