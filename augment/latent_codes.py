"""InfoGAN's latent codes (Chen et al., 2016): their layout, how they are drawn, and how a
user sets or sweeps them.

A synthesize model may take an optional ``code`` input f32[N, D] beside ``z`` and
``label``: ``continuous`` codes, each uniform on [-1, 1], then one one-hot block per
categorical code (``categorical`` lists each code's number of values). The layout travels
in the ONNX metadata (``variant.codes``), so every path that runs the model draws the
codes the same way.

Names: continuous codes are ``c0``, ``c1``, ...; categorical ones ``k0``, ``k1``, ....
A :class:`CodeChoice` fixes some of them (``c0=0.5``, ``k0=3``) and may sweep one
continuous code evenly from -1 to 1 over each class's images; the others are drawn. In a
sweep ``z`` and the drawn codes stay at the class's first draw, so only the swept code
moves the image.

Drawing is independent of how a job is cut into batches: the codes of image ``i`` come
from row ``i`` of one array of uniform numbers (one per code, continuous or categorical)
read row by row from their own stream, ``default_rng([seed, CODE_STREAM])``, so ``z``'s
stream, and with it every model without codes, is untouched.

:class:`LatentStream` draws a model's whole latent input (``z``, mapped onto a truncated
normal when the model was exported with BigGAN's truncation trick, and the codes); the
runtime, ``augment generate`` and the synthesize stage all sample through it;
:class:`InterpolatedStream` is its twin for a model with an encoder (BiGAN, ALI): ``z``
between the codes of two real images of the class.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from augment.errors import ConfigError

CODE_STREAM = 1  # the second word of the codes' seed: [seed, 1]
INTERPOLATION_STREAM = 2  # the second word of the interpolation draws' seed: [seed, 2]


@dataclass(frozen=True)
class CodeLayout:
    """``continuous`` uniform codes, then a one-hot block per entry of ``categorical``."""

    continuous: int = 0
    categorical: tuple[int, ...] = ()

    @property
    def dim(self) -> int:
        """Width of the ``code`` input: continuous codes + every one-hot block."""
        return self.continuous + sum(self.categorical)

    @property
    def names(self) -> tuple[str, ...]:
        return (
            *(f"c{i}" for i in range(self.continuous)),
            *(f"k{j}" for j in range(len(self.categorical))),
        )

    def to_json(self) -> dict[str, Any]:
        return {"continuous": self.continuous, "categorical": list(self.categorical)}

    @classmethod
    def from_metadata(cls, text: str | None) -> CodeLayout | None:
        """The layout of a model's ``variant.codes`` metadata (None: a model without codes)."""
        if not text:
            return None
        value = json.loads(text)
        return cls(int(value["continuous"]), tuple(int(k) for k in value["categorical"]))

    def codes(self, uniform: np.ndarray) -> np.ndarray:
        """f32[N, dim] codes from uniform numbers u f32[N, continuous + len(categorical)]:
        continuous ``2u - 1``; categorical ``floor(u * k)`` one-hot."""
        n = len(uniform)
        out = np.zeros((n, self.dim), np.float32)
        out[:, : self.continuous] = 2.0 * uniform[:, : self.continuous] - 1.0
        offset = self.continuous
        for j, k in enumerate(self.categorical):
            value = np.minimum((uniform[:, self.continuous + j] * k).astype(np.int64), k - 1)
            out[np.arange(n), offset + value] = 1.0
            offset += k
        return out


@dataclass(frozen=True)
class CodeChoice:
    """The codes a user sets: ``fixed`` name -> value (a continuous code's value in [-1, 1],
    a categorical code's index) and ``sweep``, a continuous code run evenly from -1 to 1
    over each class's images; codes not named are drawn."""

    fixed: Mapping[str, float] = field(default_factory=dict)
    sweep: str | None = None

    @classmethod
    def parse(cls, assignments: list[str] | None, sweep: str | None) -> CodeChoice:
        """From ``NAME=VALUE`` strings (``--code c0=0.5``) and a sweep name."""
        fixed: dict[str, float] = {}
        for text in assignments or []:
            match = re.fullmatch(r"\s*([ck][0-9]+)\s*=\s*([-+.0-9eE]+)\s*", text)
            try:
                fixed[match.group(1)] = float(match.group(2))  # type: ignore[union-attr]
            except (AttributeError, ValueError):
                raise ConfigError(
                    f"--code {text!r}: expected NAME=VALUE, e.g. c0=0.5 (continuous) or k0=3"
                ) from None
        return cls(fixed, sweep)

    def __bool__(self) -> bool:
        return bool(self.fixed) or self.sweep is not None

    def describe(self) -> str:
        """A stable text of the choice (recorded by ``augment generate``'s job)."""
        parts = [f"{k}={v:g}" for k, v in sorted(self.fixed.items())]
        return ";".join(parts + ([f"sweep={self.sweep}"] if self.sweep else []))

    def check(self, layout: CodeLayout | None, where: str) -> None:
        """ConfigError naming the code ``where`` cannot take (unknown, out of range, or a
        model without codes)."""
        if not self:
            return
        if layout is None:
            raise ConfigError(f"{where} has no latent codes to set (an infogan model has)")
        names = layout.names
        for name in [*self.fixed, *([self.sweep] if self.sweep else [])]:
            if name not in names:
                raise ConfigError(f"{where}: unknown code {name!r} (codes: {', '.join(names)})")
        if self.sweep and self.sweep.startswith("k"):
            raise ConfigError(f"{where}: sweep {self.sweep!r}: only continuous codes sweep")
        if self.sweep in self.fixed:
            raise ConfigError(f"{where}: code {self.sweep!r} is both fixed and swept")
        for name, value in self.fixed.items():
            if name.startswith("c") and not -1.0 <= value <= 1.0:
                raise ConfigError(f"{where}: code {name}={value:g} is outside [-1, 1]")
            k = layout.categorical[int(name[1:])] if name.startswith("k") else 0
            if name.startswith("k") and (value != int(value) or not 0 <= value < k):
                raise ConfigError(f"{where}: code {name}={value:g} is not one of 0..{k - 1}")

    def apply(
        self, layout: CodeLayout, uniform: np.ndarray, positions: np.ndarray, count: int
    ) -> np.ndarray:
        """Codes f32[N, dim] for drawn ``uniform`` rows with this choice applied; image
        ``positions[i]`` of ``count`` a class gets the sweep's value ``-1 + 2 i/(count-1)``."""
        uniform = uniform.copy()
        names = layout.names
        for name, value in self.fixed.items():
            column = names.index(name)
            if name.startswith("c"):
                uniform[:, column] = (value + 1.0) / 2.0
            else:  # the middle of value's bin: floor(u * k) == value
                uniform[:, column] = (value + 0.5) / layout.categorical[int(name[1:])]
        if self.sweep is not None:
            steps = max(count - 1, 1)
            uniform[:, names.index(self.sweep)] = positions / steps
        return layout.codes(uniform)


def truncated(z: np.ndarray, t: float) -> np.ndarray:
    """Standard normal draws mapped onto the normal truncated to [-t, t] (the truncation
    trick, Brock et al., 2019), value by value: ``Phi^-1(Phi(-t) + Phi(z) (Phi(t) -
    Phi(-t)))``. The inverse-CDF map keeps each value's place in the stream (no
    resampling), so a truncated job is as batching-invariant as an untruncated one; it is
    monotone, so a smaller ``t`` pulls every sample towards the mode."""
    from scipy.special import ndtr, ndtri

    low = ndtr(-t)
    return ndtri(low + ndtr(z) * (1.0 - 2.0 * low))


class LatentStream:
    """The latent inputs of ``count`` images of a synthesize model, drawn in order from
    ``seed``: ``z`` f32[n, latent_dim] from ``default_rng(seed)`` (mapped onto the normal
    truncated to [-t, t] when the model was exported with ``truncation`` t) and, for a
    model with codes, ``code`` from the codes' own stream with ``choice`` applied. However
    the images are cut into batches, image ``i`` gets the same inputs."""

    def __init__(
        self,
        latent_dim: int,
        layout: CodeLayout | None,
        seed: int,
        count: int,
        choice: CodeChoice | None = None,
        truncation: float | None = None,
    ) -> None:
        self.latent_dim, self.layout, self.count = latent_dim, layout, count
        self.truncation = truncation
        self.choice = choice or CodeChoice()
        self.z = np.random.default_rng(seed)
        self.code = np.random.default_rng([seed, CODE_STREAM]) if layout else None
        self.position = 0
        self.anchor: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))  # sweep: row 0

    def next(self, n: int) -> dict[str, np.ndarray]:
        """The inputs of the next ``n`` images (``z``, and ``code`` where the model has one).

        In a sweep every image repeats the stream's first ``z`` and first drawn codes, so
        the swept code is the only thing that changes along it (controlled variation)."""
        z = self.z.standard_normal((n, self.latent_dim))
        if self.truncation is not None:
            z = truncated(z, self.truncation)
        z = z.astype(np.float32)
        inputs = {"z": z}
        if self.layout is not None and self.code is not None:
            k = self.layout.continuous + len(self.layout.categorical)
            uniform = self.code.random((n, k))
            if self.choice.sweep is not None:
                if self.position == 0 and n:
                    self.anchor = (z[:1].copy(), uniform[:1].copy())
                z_0, uniform_0 = self.anchor
                inputs["z"] = np.repeat(z_0, n, axis=0)
                uniform = np.repeat(uniform_0, n, axis=0)
            positions = np.arange(self.position, self.position + n)
            inputs["code"] = self.choice.apply(self.layout, uniform, positions, self.count)
        self.position += n
        return inputs


class InterpolatedStream:
    """``z`` between the codes of real images, drawn in order from ``seed``: the DeepSMOTE
    idea (Dablain et al., 2022; SMOTE, Chawla et al., 2002, in an autoencoder's latent
    space) in the latent space of a generator with an encoder (BiGAN, ALI).

    ``anchors`` f32[M, latent_dim] are the encoder's codes of one class's real images.
    Image ``i`` reads three uniform numbers ``u`` (row ``i`` of ``default_rng([seed, 2])``)
    and takes ``z = (1 - l) a_p + l a_q`` with ``p = floor(u0 M)``, ``q`` one of the other
    ``M - 1`` anchors (``floor(u1 (M - 1))`` places after ``p``, cyclically) and ``l = u2``:
    a point on the segment between two distinct real images of the class (their own code
    when ``M`` is 1). Row by row, so the draws do not depend on batching.
    """

    def __init__(self, anchors: np.ndarray, seed: int) -> None:
        anchors = np.asarray(anchors, np.float32)
        if anchors.ndim != 2 or not len(anchors):
            raise ValueError(f"anchors must be a non-empty M x D array, got {anchors.shape}")
        self.anchors = anchors
        self.uniform = np.random.default_rng([seed, INTERPOLATION_STREAM])

    def next(self, n: int) -> dict[str, np.ndarray]:
        """``{"z": f32[n, latent_dim]}``, the inputs of the next ``n`` images."""
        m = len(self.anchors)
        u = self.uniform.random((n, 3))
        p = np.minimum((u[:, 0] * m).astype(np.int64), m - 1)
        step = np.minimum((u[:, 1] * (m - 1)).astype(np.int64), max(m - 2, 0))
        q = (p + 1 + step) % m if m > 1 else p
        mix = u[:, 2:3].astype(np.float32)
        return {"z": (1.0 - mix) * self.anchors[p] + mix * self.anchors[q]}
