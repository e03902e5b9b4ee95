"""4. paths that escape the dataset root (CSV rows, folder symlinks)."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import strategies as st

from augment.data.sources import FolderSource, load_csv, load_folder, parse_source
from fuzzing.core import OUTSIDE, Case
from fuzzing.images import image_bytes

# -- 4. paths that escape the dataset root --------------------------------------------------

#: data/ is the dataset root; outside/ and the links lead out of it.
ROOT_FILES: tuple[tuple[str, bytes | None], ...] = (
    ("data/img/a.png", image_bytes("L", 4, 4, 1)),
    ("data/img/sub/b.png", image_bytes("L", 4, 4, 2)),
    ("outside/o.png", image_bytes("L", 4, 4, 3)),
    ("outside/cls/o.png", image_bytes("L", 4, 4, 4)),
)
ROOT_LINKS: tuple[tuple[str, str], ...] = (
    ("data/link_out", "../outside"),
    ("data/link_in", "img"),
    ("data/img/file_out.png", "../../outside/o.png"),
    ("data/img/file_in.png", "a.png"),
)
SEGMENTS = ["..", ".", "img", "sub", "data", "outside", "link_out", "link_in"]
LEAVES = ["a.png", "b.png", "o.png", "file_out.png", "file_in.png"]


def escapes(path: str, root: Path) -> bool:
    """The oracle: ``path`` (relative to ``root`` or absolute) is absolute, or its
    normalized form or resolved real path is not under ``root``."""
    if os.path.isabs(path):
        return True
    joined = Path(os.path.normpath(root / path))
    return not (joined.is_relative_to(root) and joined.resolve().is_relative_to(root.resolve()))


@st.composite
def csv_root_cases(draw: st.DrawFn) -> Case:
    """CSV rows whose paths wander through ``..``, symlinks and absolute paths."""
    relative = st.tuples(st.lists(st.sampled_from(SEGMENTS), max_size=4), st.sampled_from(LEAVES))
    paths = draw(
        st.lists(
            st.one_of(
                relative.map(lambda p: "/".join([*p[0], p[1]])),
                st.sampled_from(["{root}/data/img/a.png", "{root}/outside/o.png"]),
            ),
            min_size=1,
            max_size=3,
        )
    )
    allow = draw(st.booleans())
    text = "path,label\n" + "".join(f"{p},x\n" for p in paths)

    def load(d: Path) -> object:
        (d / "data/list.csv").write_text(text.replace("{root}", str(d)))
        source = {"kind": "csv", "path": str(d / "data/list.csv"), "allow_outside_root": allow}
        return load_csv(parse_source(source, "params.yaml prepare"))  # type: ignore[arg-type]

    def check(d: Path, message: str | None) -> str | None:
        root = d / "data"
        rows = [i + 2 for i, p in enumerate(paths) if escapes(p.replace("{root}", str(d)), root)]
        said = message is not None and OUTSIDE in message
        if rows and not allow:
            expected = f"list.csv row {rows[0]}: path "
            return None if said and expected in message else f"expected {expected!r}..."
        return f"refused a path inside the root: {message}" if said else None

    return Case(
        f"csv paths {paths} (allow_outside_root {allow})",
        load,
        ("list.csv",),
        files=ROOT_FILES,
        links=ROOT_LINKS,
        check=check,
    )


@st.composite
def folder_root_cases(draw: st.DrawFn) -> Case:
    """A class folder source with symlinked images or class folders, inside or out."""
    links = draw(
        st.lists(
            st.sampled_from(
                [
                    ("data/cls/out.png", "../../outside/o.png"),
                    ("data/cls/in.png", "a.png"),
                    ("data/linked_cls", "../outside/cls"),
                    ("data/inner_cls", "cls"),
                ]
            ),
            unique=True,
            max_size=3,
        )
    )
    allow = draw(st.booleans())
    escaping = any(target.startswith("..") for _, target in links)

    def check(_: Path, message: str | None) -> str | None:
        said = message is not None and OUTSIDE in message
        if escaping and not allow:
            return None if said else f"escaping link accepted: {message}"
        return f"refused a folder inside the root: {message}" if said else None

    return Case(
        f"folder links {links} (allow_outside_root {allow})",
        lambda d: load_folder(FolderSource(root=str(d / "data"), allow_outside_root=allow)),
        ("data/",),
        files=(("data/cls/a.png", image_bytes("L", 4, 4, 1)), *ROOT_FILES[2:]),
        links=tuple(links),
        check=check,
    )


def root_cases() -> st.SearchStrategy[Case]:
    return st.one_of(csv_root_cases(), folder_root_cases())
