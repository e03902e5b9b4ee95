"""A new plugin package from a variant name: what ``augment plugins new NAME`` writes.

The files are the ones docs/plugins.md walks through (a test checks that the template for
``tiny-gan`` is the guide's text): a pyproject.toml with the ``augment`` entry point, a
one-module variant on the DCGAN recipe, and a test that runs the conformance kit
(:mod:`augment.testing`), so the package passes its own suite as generated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from augment.errors import ConfigError
from augment.io import atomic_path

VARIANT_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")

PYPROJECT = Template("""\
[build-system]
requires = ["setuptools>=77"]  # (77: the license as an SPDX expression)
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "gan-augment plugin: a small class-conditional GAN"
requires-python = ">=3.10"
license = "MIT"
dependencies = ["gan-augment"]

[project.entry-points.augment]
$entry_point = "$module"

[tool.setuptools]
py-modules = ["$module"]
""")

MODULE = Template('''\
"""A small class-conditional GAN: the DCGAN networks, hinge loss, spectral norm."""

from augment import SynthesisParams, hookimpl
from augment.tasks.synthesis import ConditionalDCGAN


class $cls(ConditionalDCGAN):
    """DCGAN networks at width 16, hinge loss, spectral norm, projection critic."""

    name = "$name"
    Params = SynthesisParams.with_defaults(
        loss="hinge", width=16, spectral_norm=True, conditioning="projection", d_norm="none"
    )


@hookimpl
def augment_register_variants(register):
    register($cls)
''')

TEST = Template("""\
from augment.testing import check_resume, check_variant


def test_${entry_point}_keeps_the_contract(tmp_path):
    # two training steps, an exact checkpoint round trip, an ONNX export that onnxruntime
    # reproduces, its metadata, value range and seeded determinism (and, for upscalers
    # and translators, any height and width)
    result = check_variant("$name", tmp_path / "contract")
    assert result.max_abs_diff <= 1e-4


def test_${entry_point}_resumes_exactly(tmp_path):
    # 6 steps straight == 3 steps, a resume, 3 more: all state is in the checkpoint
    check_resume("$name", tmp_path / "resume", params={"width": 8})
""")


@dataclass(frozen=True)
class PluginNames:
    """Every name a plugin package derives from its variant's name (``tiny-gan``)."""

    name: str  # the variant: tiny-gan
    entry_point: str  # tinygan
    module: str  # augment_tinygan
    distribution: str  # augment-tinygan
    cls: str  # TinyGAN

    @classmethod
    def of(cls, name: str) -> PluginNames:
        if not VARIANT_NAME.fullmatch(name):
            raise ConfigError(
                f"plugin name {name!r}: lower-case letters and digits, words joined by '-' "
                "(e.g. tiny-gan)"
            )
        slug = name.replace("-", "")
        words = [w.upper() if w == "gan" else w.capitalize() for w in name.split("-")]
        return cls(name, slug, f"augment_{slug}", f"augment-{slug}", "".join(words))


def plugin_files(name: str) -> dict[str, str]:
    """The package's files (relative path -> text) for variant ``name``."""
    names = PluginNames.of(name)
    fields = vars(names)
    return {
        "pyproject.toml": PYPROJECT.substitute(fields),
        f"{names.module}.py": MODULE.substitute(fields),
        f"test_{names.entry_point}.py": TEST.substitute(fields),
    }


def write_plugin(name: str, parent: Path) -> Path:
    """Write the package for ``name`` into ``parent/augment-<name>/`` (atomically; an
    existing folder is an error, never overwritten). Returns the folder."""
    folder = parent / PluginNames.of(name).distribution
    if folder.exists():
        raise ConfigError(f"{folder}: already exists (choose another name or folder)")
    with atomic_path(folder, is_dir=True) as tmp:
        for relative, text in plugin_files(name).items():
            (tmp / relative).write_text(text, encoding="utf-8")
    return folder
