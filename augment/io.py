"""Atomic file output: a reader never sees a partial file or folder at the final path."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from augment.errors import AugmentError


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str], is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``final``; on success rename it over ``final``.

    On any exception the temporary path is removed and ``final`` (if it existed) is left
    exactly as it was.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if is_dir:
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        else:
            fd, name = tempfile.mkstemp(
                prefix=f".{final.name}.", suffix=final.suffix, dir=final.parent
            )
            os.close(fd)
            tmp = Path(name)
    except OSError as exc:
        raise AugmentError(f"{final}: cannot write output ({exc.strerror})") from exc
    try:
        yield tmp
        if is_dir:
            old = final.with_name(f".{final.name}.old")
            if final.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
