"""Validated configuration: turn plain dicts (params.yaml sections, CLI options) into models.

Every config model forbids unknown keys, so a typo fails naming the key instead of being
silently ignored.
"""

from __future__ import annotations

from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo

from augment.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, protected_namespaces=(), validate_default=True
    )

    @classmethod
    def with_defaults(cls: type[M], **defaults: Any) -> type[M]:
        """A subclass with other defaults; each field keeps its type and constraints.

        ``WGAN.Params = SynthesisParams.with_defaults(loss="wasserstein", d_steps=5)``
        """
        unknown = sorted(set(defaults) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"{cls.__name__} has no fields {unknown}")
        fields: dict[str, Any] = {
            key: (
                cls.model_fields[key].annotation,
                FieldInfo.merge_field_infos(cls.model_fields[key], default=value),
            )
            for key, value in defaults.items()
        }
        return create_model(cls.__name__, __base__=cls, __module__=cls.__module__, **fields)


def parse(model: type[M], data: Any, where: str) -> M:
    """Validate `data` against `model`; on failure raise one ConfigError naming `where.key`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, where, model)) from None


def describe(exc: ValidationError, where: str, model: type[BaseModel]) -> str:
    """Condense a pydantic error into one line that names the offending key."""
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    location = f"{where}.{key}" if key else where
    if first["type"] == "extra_forbidden":
        valid = ", ".join(sorted(_model_at(model, first["loc"][:-1]).model_fields))
        return f"{location}: unknown key (valid keys: {valid})"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    if first["type"] == "value_error" and not key:  # a model validator: "key: what is wrong"
        message = str(first["ctx"]["error"])
        head, sep, rest = message.partition(": ")
        if sep and head.replace("_", "").replace(".", "").isalnum():
            return f"{where}.{head}: {rest}{more}"
        return f"{where}: {message}{more}"
    return f"{location}: {first['msg']}, got {first.get('input')!r}{more}"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The BaseModel classes inside an annotation (through Optional, Union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel]:
    """The nested model a validation error location points into (union tags followed)."""
    parts = list(loc)
    while parts:
        field = model.model_fields.get(parts.pop(0)) if isinstance(parts[0], str) else None
        if field is None:
            break
        candidates = _models_in(field.annotation)
        if len(candidates) > 1 and parts:  # discriminated union: the next part is the tag
            tagged = [m for m in candidates if parts[0] in map(str, _tags(m))]
            if tagged:
                parts.pop(0)
                candidates = tagged
        if len(candidates) != 1:
            break
        model = candidates[0]
    return model


def _tags(model: type[BaseModel]) -> tuple[Any, ...]:
    kind = model.model_fields.get("kind")
    return get_args(kind.annotation) if kind is not None else ()
