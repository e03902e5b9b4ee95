"""Bad inputs for every loader and parser, shared by tests/test_fuzz.py (hypothesis
properties under pytest) and benchmarks/fuzz.py (the many-case harness).

A :class:`Case` is a set of files to write into an empty folder and the loader call that
reads them. :func:`run_case` says what the call did:

* ``accepted``: it returned normally (fine for an input that happens to be valid);
* ``clear_error``: it raised the expected AugmentError subclass with a one-line message
  naming the input (its file, CSV row or params key);
* ``bug``: anything else: another exception type, a multi-line or unnamed message, or an
  outcome the case's own ``check`` refuses (an escaping path accepted, say).

:data:`FAMILIES` maps each family of inputs to the hypothesis strategy of its cases; each
family lives in its own module here (:mod:`fuzzing.idx`, ...), what they share in
:mod:`fuzzing.core`.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from fuzzing.checkpoints import NotAState, checkpoint_cases, torch_bytes, zip_bytes
from fuzzing.core import Case, Outcome, run_case, write_files
from fuzzing.csv_manifests import csv_cases
from fuzzing.idx import idx_bytes, idx_cases
from fuzzing.images import image_bytes, image_cases, png_declaring
from fuzzing.onnx_models import edit_model, onnx_cases, tiny_onnx_models
from fuzzing.outside_root import ROOT_FILES, ROOT_LINKS, root_cases
from fuzzing.params import config_targets, field_accepts, params_cases

__all__ = [
    "Case",
    "FAMILIES",
    "NotAState",
    "Outcome",
    "ROOT_FILES",
    "ROOT_LINKS",
    "config_targets",
    "edit_model",
    "field_accepts",
    "idx_bytes",
    "image_bytes",
    "png_declaring",
    "run_case",
    "tiny_onnx_models",
    "torch_bytes",
    "write_files",
    "zip_bytes",
]

FAMILIES: dict[str, Callable[[], st.SearchStrategy[Case]]] = {
    "idx": idx_cases,
    "image": image_cases,
    "csv": csv_cases,
    "outside_root": root_cases,
    "params": params_cases,
    "onnx": onnx_cases,
    "checkpoint": checkpoint_cases,
}
