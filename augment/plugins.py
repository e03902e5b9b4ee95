"""The plugin host: loads every plugin exposed through the entry-point group ``augment``.

Two environment variables restrict what loads (comma-separated entry-point names):

* ``AUGMENT_PLUGINS``: load only these plugins;
* ``AUGMENT_PLUGINS_DISABLE``: never load these.

The entry points are scanned and imported once per process and setting of these two
variables (:func:`plugin_manager` caches its answer; :func:`forget_plugins` drops it, for
a process that installs a plugin while it runs).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from augment import hookspecs
from augment.errors import PluginError

ENV_ALLOW = "AUGMENT_PLUGINS"
ENV_DENY = "AUGMENT_PLUGINS_DISABLE"


@dataclass(frozen=True)
class PluginInfo:
    """Where a loaded plugin came from."""

    name: str
    distribution: str
    version: str


def _names(variable: str) -> set[str] | None:
    value = os.environ.get(variable, "").strip()
    return {n.strip() for n in value.split(",") if n.strip()} if value else None


Loaded = tuple[pluggy.PluginManager, dict[str, PluginInfo]]
_loaded: dict[tuple[str, str], Loaded] = {}


def plugin_manager() -> Loaded:
    """A PluginManager with every allowed ``augment`` entry point registered (built once
    per process and value of the two variables).

    Returns the manager and, per plugin name, the distribution that provides it.
    """
    key = (os.environ.get(ENV_ALLOW, ""), os.environ.get(ENV_DENY, ""))
    if key not in _loaded:
        _loaded[key] = _load_plugins()
    return _loaded[key]


def forget_plugins() -> None:
    """Drop the cached plugin manager: the next :func:`plugin_manager` scans again."""
    _loaded.clear()


def _load_plugins() -> Loaded:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    allow, deny = _names(ENV_ALLOW), _names(ENV_DENY) or set()
    infos: dict[str, PluginInfo] = {}
    for entry in sorted(entry_points(group=hookspecs.PROJECT), key=lambda e: e.name):
        if entry.name in deny or (allow is not None and entry.name not in allow):
            continue
        if entry.name in infos:
            raise PluginError(
                f"plugin name {entry.name!r} is provided by two distributions: "
                f"{infos[entry.name].distribution} and {entry.dist.name if entry.dist else '?'}"
            )
        try:
            plugin = entry.load()
        except Exception as exc:  # a broken third-party plugin must name itself
            raise PluginError(
                f"plugin {entry.name!r} ({entry.value}) failed to import: {exc}"
            ) from exc
        manager.register(plugin, name=entry.name)
        dist = entry.dist
        infos[entry.name] = PluginInfo(
            entry.name, dist.name if dist else "?", dist.version if dist else "?"
        )
    if allow:
        missing = allow - set(infos)
        if missing:
            raise PluginError(
                f"{ENV_ALLOW} names plugins that are not installed: {sorted(missing)}"
            )
    return manager, infos


def source_path(cls: type) -> Path:
    """The code a plugin's class comes from, as DVC should track it: the folder of its
    top-level package, or the file of a top-level module (a one-file plugin).

    Raises PluginError when the module has no file on disk (defined in ``__main__`` or
    built in a process, not installed).
    """
    top = cls.__module__.partition(".")[0]
    spec = importlib.util.find_spec(top) if top != "__main__" else None
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        raise PluginError(f"{cls.__qualname__}: its module {top!r} is not a file on disk")
    if spec.submodule_search_locations:  # a package: all of its modules
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(spec.origin).resolve()
