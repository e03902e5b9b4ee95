"""Validated configuration: turn plain dicts (params.yaml sections, CLI options) into models.

Every config model forbids unknown keys, so a typo fails naming the key instead of being
silently ignored.
"""

from __future__ import annotations

from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo

from augment.errors import ConfigError, did_you_mean

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
    except ConfigError as exc:  # raised by a validator that calls library code
        raise ConfigError(f"{where}: {exc}") from None


def describe(exc: ValidationError, where: str, model: type[BaseModel]) -> str:
    """Condense a pydantic error into one line that names the offending key.

    The key is written as in params.yaml: a discriminated union's tag (``source.csv.path``)
    is not part of it (``source.path``).
    """
    first = exc.errors()[0]
    keys, holder = _walk(model, first["loc"])
    location = ".".join([where, *keys])
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):  # name the tag's key
        location += "." + str(first["ctx"]["discriminator"]).strip("'")
    if first["type"] == "extra_forbidden":
        holder = _walk(model, first["loc"][:-1])[1]
        fields = sorted(holder.model_fields) if holder is not None else []
        hint = did_you_mean(str(first["loc"][-1]), fields)
        return f"{location}: unknown key{hint} (valid keys: {', '.join(fields) or 'none'})"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    if first["type"] == "value_error" and holder is not None:  # a model's validator
        message = str(first["ctx"]["error"])
        head, sep, rest = message.partition(": ")  # "key: what is wrong" names the key
        if sep and head.replace("_", "").replace(".", "").isalnum():
            return f"{location}.{head}: {rest}{more}"
        return f"{location}: {message}{more}"
    if first["type"] == "value_error":  # a field's validator
        message = str(first["ctx"]["error"])
    elif first["type"] == "missing":
        return f"{location}: missing (required){more}"
    else:
        message = first["msg"]
    return f"{location}: {message}, got {_short_repr(first.get('input'))}{more}"


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The BaseModel classes inside an annotation (through Optional, Union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str], type[BaseModel] | None]:
    """Follow an error location through nested models: the keys as params.yaml spells
    them (union tags dropped) and the model that holds the last key (None: not a model)."""
    keys: list[str] = []
    current: type[BaseModel] | None = model
    candidates: list[type[BaseModel]] = []
    for part in loc:
        if current is not None and part in current.model_fields:
            keys.append(str(part))
            candidates = _models_in(current.model_fields[part].annotation)
            current = candidates[0] if len(candidates) == 1 else None
            continue
        tagged = [m for m in candidates if str(part) in map(str, _tags(m))]
        if len(candidates) > 1 and tagged:  # a discriminated union's tag: not a key
            current = tagged[0]
            continue
        keys.append(str(part))  # a mapping key or a list index: the next part is inside it
        current = candidates[0] if len(candidates) == 1 else None
    return keys, current


def _tags(model: type[BaseModel]) -> tuple[Any, ...]:
    kind = model.model_fields.get("kind")
    return get_args(kind.annotation) if kind is not None else ()
