"""Class-balance planning: the policies (balance, target:N, ratio:R) and their plans."""

from __future__ import annotations

import pytest

from augment.config import parse
from augment.errors import ConfigError, DataError
from augment.planning import Policy, parse_policy, plan
from augment.synthesize import SynthesisConfig


@pytest.mark.parametrize(
    "text, expected",
    [
        ("balance", Policy("balance")),
        (" target:50 ", Policy("target", target=50)),
        ("target:0", Policy("target", target=0)),
        ("ratio:0.5", Policy("ratio", ratio=parse_policy("ratio:0.50").ratio)),
        ("ratio:2", Policy("ratio", ratio=parse_policy("ratio:2.0").ratio)),
    ],
)
def test_parse_policy(text: str, expected: Policy) -> None:
    assert parse_policy(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "balanced",
        "BALANCE",
        "target",
        "target:",
        "target:-1",
        "target:1.5",
        "target:x",
        "ratio:",
        "ratio:x",
        "ratio:-0.5",
        "ratio:nan",
        "ratio:inf",
        "top:5",
        "balance:3",
    ],
)
def test_bad_policy_names_it_and_the_valid_forms(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy(text)
    message = str(info.value)
    assert repr(text) in message and "target:N" in message and "ratio:R" in message
    assert "\n" not in message


def test_bad_policy_in_params_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"params.yaml synthesize.policy: .*'top:5'"):
        parse(SynthesisConfig, {"policy": "top:5"}, "params.yaml synthesize")
    with pytest.raises(ConfigError, match="synthesize.filter.threshold"):
        parse(SynthesisConfig, {"filter": {"threshold": 1.0}}, "params.yaml synthesize")


def test_plan_balance_tops_up_to_the_largest_class() -> None:
    assert plan({"a": 40, "b": 20, "c": 3}, "balance") == {"a": 0, "b": 20, "c": 37}
    assert plan({"a": 7}, "balance") == {"a": 0}


def test_plan_target_skips_classes_at_or_above_it() -> None:
    counts = {"a": 40, "b": 20, "c": 3, "d": 25}
    assert plan(counts, "target:25") == {"a": 0, "b": 5, "c": 22, "d": 0}
    assert plan(counts, "target:0") == {"a": 0, "b": 0, "c": 0, "d": 0}


def test_plan_ratio_rounds_half_up() -> None:
    counts = {"a": 3, "b": 5, "c": 4, "d": 1, "e": 7}
    assert plan(counts, "ratio:0.5") == {"a": 2, "b": 3, "c": 2, "d": 1, "e": 4}
    assert plan(counts, "ratio:0") == dict.fromkeys(counts, 0)
    assert plan(counts, "ratio:2") == {"a": 6, "b": 10, "c": 8, "d": 2, "e": 14}
    # exact decimal arithmetic: 0.1 * 5 = 0.5 -> 1 and 0.15 * 10 = 1.5 -> 2, 0.3 * 5 = 1.5
    assert plan({"a": 5, "b": 10}, "ratio:0.1") == {"a": 1, "b": 1}
    assert plan({"a": 5, "b": 10}, "ratio:0.15") == {"a": 1, "b": 2}
    assert plan({"a": 5}, "ratio:0.3") == {"a": 2}
    assert plan({"a": 4}, "ratio:0.1249") == {"a": 0}


@pytest.mark.parametrize("policy", ["balance", "target:10", "ratio:1"])
def test_plan_refuses_an_empty_class(policy: str) -> None:
    with pytest.raises(DataError, match=r"class 'rare'.*empty class"):
        plan({"common": 10, "rare": 0}, policy)
