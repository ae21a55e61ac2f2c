"""Making a directory's entries durable: what atomic renames need after they are done."""

from __future__ import annotations

import os

__all__ = ["fsync_dir"]


def fsync_dir(path: str) -> None:
    """``fsync`` the directory ``path``, so that files created or renamed in it survive a
    crash of the machine; best effort (a filesystem that cannot sync directories is skipped).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
