"""What every benchmark does with its figures: ``<out>.json`` and ``<out>.md``, then print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_results(out: Path, report: dict[str, Any], markdown: str) -> None:
    """Write ``report`` as JSON and ``markdown`` beside it (suffixes replaced); print it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown)
    print(markdown)
