"""Files written atomically (a temporary beside the target, then renamed), with the umask's mode.

``tempfile.mkstemp`` creates files 0600 and ``mkdtemp`` folders 0700; renamed into place
they would keep those modes, unlike any other tool's output on a shared cluster. The
temporaries get the mode the user's umask gives new files (0644 and 0755 under 022).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def umask_mode(folder: bool = False) -> int:
    """The mode ``open``/``mkdir`` would give a new file (or folder) under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if folder else 0o666) & ~mask


def temp_file(folder: Path | str, suffix: str = ".part") -> str:
    """A new empty temporary file in ``folder`` with the umask's mode; returns its path."""
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=suffix)
    os.close(fd)
    os.chmod(tmp, umask_mode())
    return tmp


def temp_folder(folder: Path | str, prefix: str) -> Path:
    """A new temporary folder in ``folder`` with the umask's mode."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
    os.chmod(tmp, umask_mode(folder=True))
    return tmp
