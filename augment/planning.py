"""Class-balance planning: real train counts and a policy -> synthetic images per class.

Policies: ``balance`` (top every class up to the largest), ``target:N`` (up to N) and
``ratio:R`` (R synthetic images per real one, rounded half up, computed in decimals).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from augment.errors import ConfigError, DataError

POLICY_FORMS = "'balance', 'target:N' (integer N >= 0) or 'ratio:R' (number R >= 0)"


@dataclass(frozen=True)
class Policy:
    """How many synthetic images each class gets (see :func:`plan`)."""

    kind: Literal["balance", "target", "ratio"]
    target: int | None = None
    ratio: Decimal | None = None

    def __str__(self) -> str:
        if self.kind == "target":
            return f"target:{self.target}"
        if self.kind == "ratio":
            return f"ratio:{self.ratio}"
        return "balance"


def parse_policy(text: str) -> Policy:
    """Parse ``balance``, ``target:N`` or ``ratio:R``; anything else is a ConfigError."""
    value = str(text).strip()
    if value == "balance":
        return Policy("balance")
    kind, _, arg = value.partition(":")
    if kind == "target" and re.fullmatch(r"\d+", arg.strip()):
        return Policy("target", target=int(arg))
    if kind == "ratio" and arg.strip():
        try:
            ratio = Decimal(arg.strip())
        except InvalidOperation:
            ratio = None
        if ratio is not None and ratio.is_finite() and ratio >= 0:
            return Policy("ratio", ratio=ratio)
    raise ConfigError(f"invalid synthesis policy {text!r} (valid: {POLICY_FORMS})")


def plan(counts: Mapping[str, int], policy: Policy | str) -> dict[str, int]:
    """Synthetic images per class for real train ``counts`` under ``policy``.

    ``balance`` tops every class up to the largest count; ``target:N`` up to N (0 for
    classes already at or above N); ``ratio:R`` adds round-half-up(R * count). A class
    with no real train image is a DataError: the generator never learned it.
    """
    if isinstance(policy, str):
        policy = parse_policy(policy)
    for name, count in counts.items():
        if int(count) <= 0:
            raise DataError(
                f"class {name!r} has no real train images (empty class): the generator "
                "was never trained on it, so it cannot be synthesized"
            )
    if not counts:
        raise DataError("no classes to synthesize (the manifest has no real train images)")
    if policy.kind == "balance":
        top = max(int(c) for c in counts.values())
        return {name: top - int(c) for name, c in counts.items()}
    if policy.kind == "target":
        assert policy.target is not None
        return {name: max(policy.target - int(c), 0) for name, c in counts.items()}
    assert policy.ratio is not None
    return {
        name: int((policy.ratio * int(c)).to_integral_value(rounding=ROUND_HALF_UP))
        for name, c in counts.items()
    }
