"""Bad input to every loader and parser fails with one clear error, never a traceback.

Each family's hypothesis property draws cases from tests/fuzzing.py (also used by the
longer benchmarks/fuzz.py harness) and requires every case to be accepted or to raise
the expected AugmentError with a one-line message naming the file, row or key; the
example tests pin down the messages of the classic bad inputs.
"""

from __future__ import annotations

import pytest
from fuzzing import FAMILIES, Case
from fuzzing.core import assert_clear, fuzz
from hypothesis import given

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt files


@fuzz(120)
@given(FAMILIES["idx"]())
def test_fuzz_idx_files(case: Case) -> None:
    assert_clear(case)


@fuzz(120)
@given(FAMILIES["image"]())
def test_fuzz_image_files(case: Case) -> None:
    assert_clear(case)


@fuzz(120)
@given(FAMILIES["csv"]())
def test_fuzz_csv_manifests(case: Case) -> None:
    assert_clear(case)


@fuzz(120)
@given(FAMILIES["outside_root"]())
def test_fuzz_paths_outside_the_dataset_root(case: Case) -> None:
    assert_clear(case)


@fuzz(150)
@given(FAMILIES["params"]())
def test_fuzz_params(case: Case) -> None:
    assert_clear(case)


@fuzz(100)
@given(FAMILIES["onnx"]())
def test_fuzz_onnx_models(case: Case) -> None:
    assert_clear(case)


@fuzz(80)
@given(FAMILIES["checkpoint"]())
def test_fuzz_checkpoints(case: Case) -> None:
    assert_clear(case)
