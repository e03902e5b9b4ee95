"""Finished downstream runs kept on disk, keyed by everything that determines them.

A converged downstream run costs minutes on a CPU, and the evaluate stage trains dozens.
Each finished run is written (atomically) as ``<folder>/<key>/model.pt`` with
``run.json`` beside it, where ``key`` is the sha256 of the run's inputs: the protocol
version, the classifier config, the objective, the steps, the seed and the digest of the
training images. An evaluate stage re-run after a change on the GAN side, or after a kill,
trains only the runs whose inputs changed or which had not finished.

Bump :data:`PROTOCOL_VERSION` whenever training code changes what a run produces, so old
entries stop matching.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from augment.classifier import Classifier
from augment.io import atomic_path

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1


def run_key(**inputs: Any) -> str:
    """sha256 of the JSON of ``inputs`` (sorted keys) and the protocol version."""
    text = json.dumps({"protocol": PROTOCOL_VERSION, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class RunCache:
    """Models of finished runs in ``folder`` (None: kept in memory for this process only)."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = None if folder is None else Path(folder)
        self._memory: dict[str, Classifier] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Classifier | None:
        """The cached model of run ``key`` in eval mode, or None (an unreadable entry: None)."""
        model = self._memory.get(key)
        if model is None and self.folder is not None:
            model = self._read(key)
        if model is None:
            self.misses += 1
            return None
        self.hits += 1
        self._memory[key] = model
        return model

    def put(self, key: str, model: Classifier, about: dict[str, Any]) -> None:
        """Keep run ``key``'s model; ``about`` (plain JSON) is written beside it for people."""
        self._memory[key] = model
        if self.folder is None:
            return
        state = {
            "arch": model.arch(),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        }
        with atomic_path(self.folder / key, is_dir=True) as tmp:
            torch.save(state, tmp / "model.pt")
            (tmp / "run.json").write_text(json.dumps(about, indent=2, default=str) + "\n")

    def _read(self, key: str) -> Classifier | None:
        path = self.folder / key / "model.pt" if self.folder is not None else None
        if path is None or not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model = Classifier(**state["arch"])
            model.load_state_dict(state["state_dict"])
        except Exception as exc:  # a damaged entry is retrained, not fatal
            log.warning("%s: unreadable cached run, training it again (%s)", path, exc)
            return None
        return model.eval()
