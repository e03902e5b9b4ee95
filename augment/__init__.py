"""gan-augment: conditional GANs as data augmentation, trained, exported to ONNX and reused.

What a plugin needs is importable from here: ``from augment import hookimpl,
SynthesisVariant``. The names load on first use (PEP 562), so ``import augment`` stays
cheap and torch-free: the onnxruntime side (:class:`OnnxGenerator`, the transforms) runs
without torch installed.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("gan-augment")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "hookimpl": "augment.hookspecs",
    "Batch": "augment.variant",
    "DataSpec": "augment.variant",
    "LossOutput": "augment.variant",
    "Params": "augment.variant",
    "Preview": "augment.variant",
    "Variant": "augment.variant",
    "Task": "augment.tasks",
    "TASKS": "augment.tasks",
    "SynthesisParams": "augment.tasks.synthesis",
    "SynthesisVariant": "augment.tasks.synthesis",
    "ConditionalDCGAN": "augment.tasks.synthesis",
    "UpscaleParams": "augment.tasks.upscale",
    "UpscaleVariant": "augment.tasks.upscale",
    "TranslateParams": "augment.tasks.translate",
    "TranslateVariant": "augment.tasks.translate",
    "InpaintParams": "augment.tasks.inpaint",
    "InpaintVariant": "augment.tasks.inpaint",
    "OnnxGenerator": "augment.runtime",
}

__all__ = [  # (spelled out for linters and IDEs: the keys of _EXPORTS)
    "TASKS",
    "Batch",
    "ConditionalDCGAN",
    "DataSpec",
    "InpaintParams",
    "InpaintVariant",
    "LossOutput",
    "OnnxGenerator",
    "Params",
    "Preview",
    "SynthesisParams",
    "SynthesisVariant",
    "Task",
    "TranslateParams",
    "TranslateVariant",
    "UpscaleParams",
    "UpscaleVariant",
    "Variant",
    "__version__",
    "hookimpl",
]

if TYPE_CHECKING:
    from augment.hookspecs import hookimpl
    from augment.runtime import OnnxGenerator
    from augment.tasks import TASKS, Task
    from augment.tasks.inpaint import InpaintParams, InpaintVariant
    from augment.tasks.synthesis import ConditionalDCGAN, SynthesisParams, SynthesisVariant
    from augment.tasks.translate import TranslateParams, TranslateVariant
    from augment.tasks.upscale import UpscaleParams, UpscaleVariant
    from augment.variant import Batch, DataSpec, LossOutput, Params, Preview, Variant


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'augment' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value
