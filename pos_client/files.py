"""Private files and folders: the terminal's data folder is 0700, its databases and keys 0600."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed; the folder itself is made private to its owner."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create an empty file 0600 if it does not exist; tighten an existing one."""
    private_dir(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _tighten(path, FILE_MODE)
    else:
        os.close(descriptor)
    return path


def tighten_folder(path: Path) -> None:
    """Each regular file directly in the terminal's data folder made 0600: the token, keys,
    records and locks an older release (or a hand) left 0644. Links are not followed."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                _tighten(Path(entry.path), FILE_MODE)


def tighten_descriptor(descriptor: int) -> None:
    """The open file made 0600 if group or others may read it (never widened)."""
    with contextlib.suppress(OSError):
        current = stat.S_IMODE(os.fstat(descriptor).st_mode)
        if current & 0o077:
            os.fchmod(descriptor, current & FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    """Drop group/other permissions (never widen); a file we do not own is left as it is."""
    with contextlib.suppress(OSError):
        current = stat.S_IMODE(path.stat().st_mode)
        if current & 0o077:
            path.chmod(current & mode)
