"""One error hierarchy for the whole project.

Every error a user can cause (bad input, bad configuration, a model of the wrong task)
is an `AugmentError`. Its message is one line that names the file, row or key and says
what is wrong; the CLI and the DVC stages print it and exit non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AugmentError(Exception):
    """Base class of every error caused by input, configuration or environment.

    The message is kept to one line whatever it quotes (a file name or a CSV cell with a
    line break, a third-party error text): line breaks are escaped (``\\n``).
    """

    exit_code = 2

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(one_line(str(message)), *args)


#: Every character ``str.splitlines`` breaks at -> its escape sequence.
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def one_line(text: str) -> str:
    """``text`` with its line breaks escaped (``\\n``, ``\\r``, ``\\x0b``...)."""
    return text.translate(_LINE_BREAKS)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (its class name when it has none), to quote
    a third-party error in a one-line message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``", did you mean 'x'?"`` for the choice closest to a mistyped ``word`` ("" when
    none is close: difflib's similarity ratio of at least 0.6)."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f", did you mean {close[0]!r}?" if close else ""


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
