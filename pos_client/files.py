"""Private files and folders: the terminal's data folder is 0700, its databases and keys 0600."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
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


def write_private_atomically(
    path: Path, data: bytes | str, mode: int = FILE_MODE, *, durable: bool = True
) -> None:
    """Write `data` (text as UTF-8) to `path` whole or not at all: into a new temporary file
    beside it (created exclusively, `mode` from the start), flushed and fsync'd, renamed
    over `path`, then the folder fsync'd. A reader sees the old file or the new one, never
    half of one. On any failure the temporary file is removed, `path` is left as it was,
    and the error is raised. `durable=False` skips both fsyncs (for data that is rewritten
    anyway, e.g. a test's throwaway outbox). The folder's fsync is best effort: a file
    system that cannot fsync a folder is not an error, an I/O error is."""
    content = data.encode("utf-8") if isinstance(data, str) else data
    descriptor, temporary = _create_temporary(path, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # exactly `mode`, whatever the umask
            handle.write(content)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if durable:
        _fsync_folder(path.parent)


def _create_temporary(path: Path, mode: int) -> tuple[int, Path]:
    """A new file beside `path`, opened for writing, under a name no one else holds."""
    for _attempt in range(100):
        temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name beside", str(path))


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as exc:
        if exc.errno == errno.EIO:
            raise
    finally:
        os.close(descriptor)


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
