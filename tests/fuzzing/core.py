"""Cases, their outcomes and byte mutations: what every family of bad input shares."""

from __future__ import annotations

import gzip
import os
import re
import struct
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from augment.config import parse
from augment.errors import AugmentError, DataError

OUTSIDE = "is outside the dataset root"


# -- cases and outcomes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One input and the call that reads it.

    ``files`` are written under a fresh folder (``None`` content: a directory), ``links``
    are symlinks ``(path, target)``; ``load(folder)`` reads them. A clear error is one of
    ``errors`` whose message names one of ``names``. ``check(folder, message)`` (``None``
    message: accepted) may refuse an outcome the classification alone would pass.
    """

    what: str
    load: Callable[[Path], object]
    names: tuple[str, ...]
    errors: tuple[type[AugmentError], ...] = (DataError,)
    files: tuple[tuple[str, bytes | None], ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    check: Callable[[Path, str | None], str | None] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Outcome:
    """``kind`` is ``accepted``, ``clear_error`` or ``bug``; ``detail`` the message or
    what went wrong."""

    kind: str
    detail: str = ""


def run_case(case: Case) -> Outcome:
    """Write the case's files into a fresh temporary folder, call its loader, classify."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        folder = Path(tmp)
        write_files(folder, case.files, case.links)
        try:
            case.load(folder)
        except case.errors as exc:
            message: str | None = str(exc)
            problem = message_problem(message, case.names)
        except Exception as exc:  # noqa: BLE001 (classifying every failure is the point)
            text = str(exc).strip().splitlines()
            return Outcome("bug", f"{type(exc).__name__}: {text[0][:200] if text else ''}")
        else:
            message, problem = None, None
        if problem is None and case.check is not None:
            problem = case.check(folder, message)
    if problem is not None:
        return Outcome("bug", problem)
    return Outcome("accepted") if message is None else Outcome("clear_error", message)


def message_problem(message: str, names: Sequence[str]) -> str | None:
    """What makes an error message unclear (None: it is one line naming an input)."""
    if len(message.splitlines()) != 1:
        return f"multi-line message: {message[:200]!r}"
    if not any(name in message for name in names):
        return f"message names none of {list(names)}: {message[:200]!r}"
    return None


def write_files(
    folder: Path,
    files: Sequence[tuple[str, bytes | None]],
    links: Sequence[tuple[str, str]] = (),
) -> None:
    """Write ``files`` (``None`` content: a directory) and symlinks ``(path, target)``."""
    for name, content in files:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        else:
            path.write_bytes(content)
    for name, target in links:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, folder / name)


# -- byte mutations -------------------------------------------------------------------------

#: Header values that break parsers: zero, sign and size boundaries, idx magics (ndim 0...).
U32 = st.one_of(
    st.sampled_from(
        [0, 1, 255, 0x800, 0x801, 0x803, 0x8FF, 0xD03, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1]
    ),
    st.integers(0, 2**32 - 1),
)


def flip_bits(data: bytes, bits: Sequence[int]) -> bytes:
    out = bytearray(data)
    for bit in bits:
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def put(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """``data`` with ``value`` packed as ``fmt`` (e.g. ``>I``) at ``offset``."""
    packed = struct.pack(fmt, value)
    return data[:offset] + packed + data[offset + len(packed) :]


def mutated(
    data: bytes, fields: Sequence[tuple[int, str]] = ()
) -> st.SearchStrategy[tuple[str, bytes]]:
    """``(what, bytes)``: ``data`` truncated, with flipped bits, overwritten bytes, a header
    field (``(offset, unsigned struct format)``) set to a boundary value, or replaced by random
    bytes."""
    n = len(data)
    options = [
        st.integers(0, max(n - 1, 0)).map(lambda k: (f"first {k} of {n} bytes", data[:k])),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=8)).map(
            lambda at: (f"bytes {at[1].hex()} at {at[0]}", data[: at[0]] + at[1] + data[at[0] :])
        ),
        st.binary(max_size=min(2 * n, 4096)).map(lambda b: (f"random bytes {b[:16].hex()}", b)),
    ]
    if n:
        options.append(
            st.lists(st.integers(0, 8 * n - 1), min_size=1, max_size=4).map(
                lambda bits: (f"bits {bits} flipped", flip_bits(data, bits))
            )
        )
    if fields:
        options.append(
            st.tuples(st.sampled_from(list(fields)), U32).map(
                lambda fv: (
                    f"{fv[0][1]} at {fv[0][0]} = {fv[1]:#x}",
                    put(data, fv[0][0], fv[0][1], fv[1] % 2 ** (8 * struct.calcsize(fv[0][1]))),
                )
            )
        )
    return st.one_of(options)


@st.composite
def maybe_gzipped(draw: st.DrawFn, what: str, data: bytes) -> tuple[str, bytes]:
    """``(what, data)`` as is, gzipped, or gzipped and then mutated."""
    choice = draw(st.sampled_from(["plain", "gzip", "gzip+mutation"]))
    if choice == "plain":
        return what, data
    wrapped = gzip.compress(data, mtime=0)
    if choice == "gzip":
        return f"{what}, gzipped", wrapped
    how, wrapped = draw(mutated(wrapped))
    return f"{what}, gzipped, then {how}", wrapped


# -- what the test modules share -------------------------------------------------------


def fuzz(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Deterministic hypothesis settings: the same cases on every run and machine."""
    return settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=examples,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def starts(path: Path, message: str) -> str:
    """A regex: an error message naming ``path`` first, with ``message`` after it."""
    return rf"^{re.escape(str(path))}: (.* )?\(?{message}"


def assert_clear(case: Case) -> None:
    outcome = run_case(case)
    assert outcome.kind != "bug", f"{case.what}: {outcome.detail}"


def parse_prepare(data: dict[str, Any]) -> Any:
    """``data`` validated as params.yaml's ``prepare`` section."""
    from augment.data.prepare import PrepareConfig

    return parse(PrepareConfig, data, "params.yaml prepare")
