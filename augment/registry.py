"""Variant names -> classes, filled by the plugins' ``augment_register_variants`` hooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from augment.config import parse
from augment.errors import ConfigError, PluginError, UnknownVariantError, did_you_mean
from augment.plugins import PluginInfo, plugin_manager
from augment.seeding import derive_seed
from augment.tasks import TASKS
from augment.variant import DataSpec, Params, Variant


@dataclass(frozen=True)
class VariantEntry:
    """A registered variant and the plugin that provides it."""

    name: str
    task: str
    cls: type[Variant]
    plugin: PluginInfo

    @property
    def description(self) -> str:
        return self.cls.description or (self.cls.__doc__ or "").strip().splitlines()[0]


class Registry:
    """Every variant the loaded plugins register. Unknown and duplicate names raise."""

    def __init__(self) -> None:
        self._entries: dict[str, VariantEntry] = {}

    @classmethod
    def from_plugins(cls) -> Registry:
        """Load the ``augment`` entry points (see :mod:`augment.plugins`) and register."""
        registry = cls()
        manager, infos = plugin_manager()
        for impl in manager.hook.augment_register_variants.get_hookimpls():
            info = infos[impl.plugin_name]
            impl.function(register=lambda variant, info=info: registry.register(variant, info))
        return registry

    def register(self, variant: type[Variant], plugin: PluginInfo) -> None:
        """Add ``variant``; a name registered twice raises naming both plugins."""
        if not (isinstance(variant, type) and issubclass(variant, Variant)):
            raise PluginError(f"plugin {plugin.name!r} registered {variant!r}, not a Variant class")
        name = getattr(variant, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin.name!r}: {variant.__qualname__} has no name")
        if variant.task not in TASKS:
            raise PluginError(f"variant {name!r}: unknown task {variant.task!r} (tasks: {TASKS})")
        unknown = sorted(set(variant.unsupported) - set(variant.Params.model_fields))
        if unknown:
            raise PluginError(f"variant {name!r}: unsupported names no Params field: {unknown}")
        if name in self._entries:
            other = self._entries[name].plugin
            raise PluginError(
                f"variant {name!r} is registered twice: by {other.name!r} and {plugin.name!r} "
                f"(distributions {other.distribution} and {plugin.distribution}); uninstall "
                f"one, or skip a plugin with AUGMENT_PLUGINS_DISABLE={plugin.name}"
            )
        self._entries[name] = VariantEntry(name, variant.task, variant, plugin)

    def names(self, task: str | None = None) -> list[str]:
        return sorted(n for n, e in self._entries.items() if task is None or e.task == task)

    def entries(self) -> list[VariantEntry]:
        return [self._entries[n] for n in self.names()]

    def get(self, name: str) -> VariantEntry:
        """The entry for ``name``; UnknownVariantError lists the valid names."""
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(self.names()) or "none (is any augment plugin installed?)"
            hint = did_you_mean(name, self.names())
            raise UnknownVariantError(
                f"unknown variant {name!r}{hint} (installed: {valid})"
            ) from None

    def validate(self, name: str, params: dict[str, Any] | None, where: str = "recipes") -> Params:
        """``params`` checked against the variant's Params (ConfigError naming the key).

        ``where`` prefixes the key named in a validation error (``params.yaml recipes`` in
        the train stage, so a typo reads ``params.yaml recipes.<name>.<key>``).
        """
        cls = self.get(name).cls
        validated = parse(cls.Params, params, f"{where}.{name}")
        # a knob at its default changes nothing (a checkpoint's params list every field);
        # compared after validation, so [0, 0] from YAML equals a (0, 0) default
        defaults = cls.Params.model_fields
        ignored = sorted(
            key
            for key in set(params or {}) & cls.unsupported
            if getattr(validated, key) != defaults[key].default
        )
        if ignored:
            raise ConfigError(
                f"{where}.{name}.{ignored[0]}: {name} does not use this knob (it replaces "
                f"what reads it); unsupported here: {', '.join(sorted(cls.unsupported))}"
            )
        return validated

    def create(
        self,
        name: str,
        params: dict[str, Any] | None,
        data: DataSpec,
        where: str = "recipes",
        seed: int | None = None,
    ) -> Variant:
        """Validate ``params`` (:meth:`validate`) and build the variant on ``data``;
        ``seed`` fixes the initial weights (otherwise torch's global generator decides)."""
        cls = self.get(name).cls
        validated = self.validate(name, params, where)
        if seed is None:
            return cls(validated, data)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, "init", name))
            return cls(validated, data)
