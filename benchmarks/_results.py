"""What every benchmark does with its figures: ``<out>.json`` and ``<out>.md``, then print;
the ``--smoke`` flag they share, ``--set KEY=VALUE`` params.yaml overrides, and the time
to a project's first picture (:func:`first_written`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml


def write_results(out: Path, report: dict[str, Any], markdown: str) -> None:
    """Write ``report`` as JSON and ``markdown`` beside it (suffixes replaced); print it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown)
    print(markdown)


def parse_args(parser: argparse.ArgumentParser, smoke: dict[str, Any]) -> argparse.Namespace:
    """Parse the command line, with a ``--smoke`` flag: a tiny run of the same code (does it
    still work?) that takes ``smoke``'s values (option dest: value) as its defaults; options
    given explicitly still win. Without ``--smoke`` the defaults are untouched."""
    settings = ", ".join(
        f"--{key.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for key, v in smoke.items()
    )
    parser.add_argument(
        "--smoke", action="store_true", help=f"a tiny run: does it work? ({settings})"
    )
    args = parser.parse_args()
    if args.smoke:
        parser.set_defaults(**smoke)
        args = parser.parse_args()
    return args


def add_set_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.set``: params.yaml overrides that
    :func:`set_dotted` applies, e.g. ``example``."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"a params.yaml override, e.g. {example} (repeatable)",
    )


def set_dotted(params: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` (the value parsed as YAML) to a nested params dict."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise SystemExit(f"--set {assignment!r}: expected KEY=VALUE, e.g. recipes.sngan.lecam=0.3")
    *parents, leaf = key.split(".")
    node = params
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = yaml.safe_load(text)


def first_written(paths: list[Path], started: float) -> float | None:
    """Seconds from ``started`` to the first of ``paths`` written since; None when none was
    (a resumed project keeps the pictures of an earlier run)."""
    times = [t for p in paths if p.is_file() and (t := p.stat().st_mtime) >= started]
    return round(min(times) - started, 1) if times else None
