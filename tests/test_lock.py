"""requirements.lock: every dependency locked, and the environment under test is the lock's."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest's own dependency there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def locked() -> dict[str, list[Requirement]]:
    """The lock's pins by distribution name (a name may have one pin per marker)."""
    pins: dict[str, list[Requirement]] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            pins.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    return pins


def applies(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate()


def test_every_dependency_of_pyproject_is_locked() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    pins = locked()
    missing = [d for d in declared if canonicalize_name(Requirement(d).name) not in pins]
    assert not missing, f"not in requirements.lock (run `make lock`): {missing}"
    for text in declared:
        wanted = Requirement(text)
        for pin in pins[canonicalize_name(wanted.name)]:
            (version,) = (s.version for s in pin.specifier)
            assert wanted.specifier.contains(version, prereleases=True), (
                f"requirements.lock pins {pin} outside pyproject's {wanted} (run `make lock`)"
            )


def test_the_environment_under_test_is_the_locked_one() -> None:
    """`make install` installs with the lock as constraints, so CI tests its versions."""
    drift = []
    for name, pins in locked().items():
        for pin in filter(applies, pins):
            try:
                installed = metadata.version(name)
            except metadata.PackageNotFoundError:
                installed = "missing"
            if not pin.specifier.contains(installed, prereleases=True):
                drift.append(f"{name} {installed} (locked {pin.specifier})")
    assert not drift, "installed versions differ from requirements.lock: " + ", ".join(drift)
