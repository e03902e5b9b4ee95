"""gan-augment: conditional GANs as data augmentation, trained, exported to ONNX and reused."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gan-augment")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
