"""One error hierarchy for the whole project.

Every error a user can cause (bad input, bad configuration, a model of the wrong task)
is an `AugmentError`. Its message is one line that names the file, row or key and says
what is wrong; the CLI and the DVC stages print it and exit non-zero.
"""

from __future__ import annotations


class AugmentError(Exception):
    """Base class of every error caused by input, configuration or environment."""

    exit_code = 2


class ConfigError(AugmentError):
    """A params.yaml key, a variant's Params or a CLI option is wrong."""


class UnknownVariantError(ConfigError):
    """A variant name that no installed plugin registers."""


class PluginError(AugmentError):
    """A plugin failed to load or registered something invalid."""


class DataError(AugmentError):
    """A dataset, manifest, image or label is missing, corrupt or inconsistent."""


class ModelError(AugmentError):
    """An ONNX file or checkpoint is missing, corrupt or of the wrong task."""


class ExportError(AugmentError):
    """ONNX export failed or onnxruntime does not reproduce torch's output."""


class TrainingDiverged(AugmentError):
    """A loss became NaN/inf or exploded; the last good checkpoint is kept."""
