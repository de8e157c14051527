"""Durable file operations: the fsyncs that make a write-then-rename survive a power cut.

A rename is atomic but not durable: the new name lives in the folder's entries, which
the kernel may not have written when the power goes. Syncing the file before the
rename and the folder after it is what makes "the old file or the new one, never half
of one" hold across a crash.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_folder(folder: Path) -> None:
    """Make renames and unlinks in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Make what was written to ``path`` (by another handle) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
