"""Atomic file output: a reader never sees a partial file or folder at the final path.

Work happens in a hidden sibling named after the final path and the writing process
(``.<name>.tmp-<pid>-<random>``) and is renamed over the final path on success. A process
killed mid-write (SIGKILL, power loss) leaves such a sibling behind; the next write of the
same path removes the ones whose process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from augment.errors import AugmentError, DataError

#: errno values that mean "this output cannot be written here" (not a bug, not bad input).
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


@contextlib.contextmanager
def refused_writes(final: str | os.PathLike[str]) -> Iterator[None]:
    """A write the file system refuses (full, read-only, no permission) inside the block
    becomes a one-line AugmentError naming ``final``."""
    try:
        yield
    except OSError as exc:
        if exc.errno in WRITE_ERRORS:
            raise AugmentError(f"{final}: cannot write output ({exc.strerror})") from exc
        raise


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str], is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``final``; on success rename it over ``final``.

    On any exception the temporary path is removed and ``final`` (if it existed) is left
    exactly as it was; a write the file system refuses (full, read-only, no permission)
    becomes a one-line AugmentError naming ``final``.
    """
    final = Path(final)
    prefix = f".{final.name}.tmp-{os.getpid()}-"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(final)
        if is_dir:
            tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
            os.chmod(tmp, 0o777 & ~_umask())  # the user's normal permissions, not mkdtemp's 0700
        else:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=final.suffix, dir=final.parent)
            os.close(fd)
            tmp = Path(name)
    except OSError as exc:
        raise AugmentError(f"{final}: cannot write output ({exc.strerror})") from exc
    try:
        with refused_writes(final):
            yield tmp
            if is_dir:
                old = final.with_name(f".{final.name}.old")
                if final.exists():
                    shutil.rmtree(old, ignore_errors=True)
                    os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.chmod(tmp, 0o666 & ~_umask())  # not mkstemp's 0600
                os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: written into every folder the ``augment`` commands make: its presence is what lets a
#: later run replace the folder without ``--force``
OUTPUT_MARKER = ".gan-augment-output"


def check_output_folder(final: str | os.PathLike[str], force: bool = False) -> None:
    """DataError when :func:`output_folder` would refuse ``final``: a file, or a non-empty
    folder gan-augment did not write (without :data:`OUTPUT_MARKER`) unless ``force``."""
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise DataError(f"{final}: exists and is not a folder")
    if final.is_dir() and not force and not (final / OUTPUT_MARKER).is_file():
        entries = sum(1 for _ in final.iterdir())
        if entries:
            raise DataError(
                f"{final}: folder exists with {entries} entr{'y' if entries == 1 else 'ies'} "
                "that gan-augment did not write; choose a new folder, or pass --force to "
                "replace it (deleting them)"
            )


@contextlib.contextmanager
def output_folder(final: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """:func:`atomic_path` for a command's output folder, which never deletes what it did
    not write: :func:`check_output_folder` first, before any work."""
    check_output_folder(final, force)
    with atomic_path(final, is_dir=True) as tmp:
        (tmp / OUTPUT_MARKER).write_text("written by gan-augment; safe to replace\n")
        yield tmp


def remove_stale_temporaries(final: Path) -> None:
    """Remove what killed writers of ``final`` left: temporaries of dead processes, and an
    ``.old`` copy (put back when the kill came between the two renames of a folder)."""
    pattern = re.compile(rf"\.{re.escape(final.name)}\.tmp-(\d+)-")
    for sibling in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        match = pattern.match(sibling.name)
        if match and not _process_alive(int(match.group(1))):
            _remove(sibling)
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        if final.exists():
            _remove(old)
        else:
            os.replace(old, final)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def is_file(path: str | os.PathLike[str]) -> bool:
    """``Path.is_file`` that answers False (not OSError) for a name the OS cannot take."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
