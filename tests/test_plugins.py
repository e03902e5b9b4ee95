"""The plugin host: entry-point discovery, env filters, registry errors, params validation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from augment.errors import ConfigError, PluginError, UnknownVariantError
from augment.plugins import PluginInfo, source_path
from augment.registry import Registry
from augment.variant import DataSpec

ROOT = Path(__file__).parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "augment_toy"
SPEC = DataSpec(28, 1, tuple("0123456789"))


def augment_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "augment.cli", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory) -> Path:
    """The toy plugin pip-installed (for real, with its entry point) into a private folder."""
    source = tmp_path_factory.mktemp("src") / "augment_toy"
    shutil.copytree(FIXTURE, source)  # pip builds in the source folder: keep the repo clean
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return target


def test_builtin_plugins_list_every_family_variant():
    listing = augment_cli("plugins", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {r["variant"]: r for r in json.loads(listing.stdout)}
    for name in ("cgan", "wgan", "wgan-gp", "sngan", "lsgan", "acgan"):
        assert rows[name]["task"] == "synthesize"
    assert rows["cgan"]["distribution"] == "augment-dcgan"
    assert rows["acgan"]["distribution"] == "augment-acgan"
    table = augment_cli("plugins", "list").stdout.splitlines()
    assert table[0].split()[:3] == ["VARIANT", "TASK", "DISTRIBUTION"]


def test_third_party_plugin_is_discovered_through_its_entry_point(toy_site):
    env = {"PYTHONPATH": os.pathsep.join([str(toy_site), os.environ.get("PYTHONPATH", "")])}
    rows = json.loads(augment_cli("plugins", "list", "--json", env=env).stdout)
    toy = [r for r in rows if r["variant"] == "toy-mlp"]
    assert toy == [
        {
            "variant": "toy-mlp",
            "task": "synthesize",
            "plugin": "toy",
            "distribution": "augment-toy",
            "version": "0.0.1",
            "description": "MLP conditional GAN with the original minimax objective.",
        }
    ]
    only = json.loads(
        augment_cli("plugins", "list", "--json", env=env | {"AUGMENT_PLUGINS": "toy"}).stdout
    )
    assert [r["variant"] for r in only] == ["toy-mlp"]
    without = json.loads(
        augment_cli(
            "plugins", "list", "--json", env=env | {"AUGMENT_PLUGINS_DISABLE": "toy,acgan"}
        ).stdout
    )
    names = {r["variant"] for r in without}
    assert "toy-mlp" not in names and "acgan" not in names and "cgan" in names


def test_allow_list_naming_a_missing_plugin_fails():
    result = augment_cli("plugins", "list", env={"AUGMENT_PLUGINS": "dcgan,nosuch"})
    assert result.returncode == 2
    assert "nosuch" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unknown_variant_lists_the_installed_ones(registry):
    match = r"unknown variant 'cgann', did you mean 'cgan'\? \(installed: .*cgan"
    with pytest.raises(UnknownVariantError, match=match):
        registry.get("cgann")


def test_duplicate_names_are_rejected(registry):
    fresh = Registry()
    cls = registry.get("cgan").cls
    fresh.register(cls, PluginInfo("a", "dist-a", "1"))
    both = r"registered twice: by 'a' and 'b' \(distributions dist-a and dist-b\); uninstall"
    with pytest.raises(PluginError, match=both + r" one, or .* AUGMENT_PLUGINS_DISABLE=b$"):
        fresh.register(cls, PluginInfo("b", "dist-b", "1"))
    with pytest.raises(PluginError, match="not a Variant class"):
        fresh.register(object, PluginInfo("c", "dist-c", "1"))


def test_params_typo_names_the_key(registry):
    typo = r"recipes.sngan.lr_gg: unknown key, did you mean 'lr_g'\? \(valid keys: "
    with pytest.raises(ConfigError, match=typo):
        registry.create("sngan", {"lr_gg": 1}, SPEC, where="params.yaml recipes")
    with pytest.raises(ConfigError, match=r"^recipes.wgan.d_steps: .*"):  # the params key
        registry.create("wgan", {"d_steps": -1}, SPEC)
    with pytest.raises(ConfigError, match="unknown DiffAugment policy"):
        registry.create("cgan", {"diffaugment": "color,flip"}, SPEC)


def test_variant_defaults_follow_their_papers(registry):
    params = {name: registry.get(name).cls.Params() for name in registry.names()}
    assert params["wgan"].weight_clip == 0.01 and params["wgan"].d_steps == 5
    assert params["wgan-gp"].gradient_penalty == 10 and params["wgan-gp"].d_norm == "layer"
    assert params["sngan"].spectral_norm and params["sngan"].conditioning == "projection"
    assert params["lsgan"].loss == "lsgan" and params["acgan"].aux_weight > 0
    sagan = params["sagan"]  # TTUR: the critic learns 4x faster; hinge, SN in both networks
    assert (sagan.lr_d, sagan.lr_g, sagan.betas) == (4e-4, 1e-4, (0.0, 0.9))
    assert sagan.loss == "hinge" and sagan.spectral_norm and sagan.attention is None
    assert params["cvae"].beta == 1.0  # the ELBO itself
    vaegan = params["vaegan"]  # the ELBO's KL, features instead of pixels, an sngan critic
    assert (vaegan.beta, vaegan.loss, vaegan.spectral_norm) == (1.0, "hinge", True)
    assert (params["began"].gamma, params["began"].lambda_k) == (0.5, 1e-3)
    infogan = params["infogan"]  # MNIST's two continuous codes, lambda 1
    progan = params["progan"]  # WGAN-GP, Adam (0, 0.99) at 1e-3, half of each level fading
    assert (progan.loss, progan.gradient_penalty, progan.betas) == (
        "wasserstein",
        10.0,
        (0.0, 0.99),
    )
    assert (progan.lr_g, progan.fade) == (1e-3, 0.5)
    assert (infogan.continuous_codes, infogan.info_weight) == (2, 1.0)
    bigan, ali = params["bigan"], params["ali"]  # the pure game: no cycle terms
    assert not bigan.stochastic_encoder and ali.stochastic_encoder
    assert bigan.reconstruction == bigan.latent_regression == ali.reconstruction == 0
    stylegan2 = params["stylegan2"]  # logistic loss, R1, Adam (0, 0.99) alike, ADA's 0.6
    assert (stylegan2.loss, stylegan2.r1, stylegan2.betas) == ("ns", 1.0, (0.0, 0.99))
    assert stylegan2.lr_g == stylegan2.lr_d and stylegan2.ada_target == 0.6
    munit, unit = params["munit"], params["unit"]  # their configs' weights; an 8-number style
    assert (munit.reconstruction, munit.content, munit.style, munit.noise) == (10, 1, 1, 8)
    assert (unit.reconstruction, unit.kl, unit.cycle, unit.noise) == (10, 0.01, 10, 0)
    hd = params["pix2pixhd"]  # least squares, feature matching 10 in place of L1
    assert (hd.loss, hd.feature_matching, hd.l1, hd.scales) == ("lsgan", 10.0, 0.0, 2)


# -- meta-tests: the plugin system itself ------------------------------------------------
PLUGINS = Path(__file__).parents[1] / "plugins"


@pytest.mark.parametrize("folder", sorted(p.name for p in PLUGINS.iterdir() if p.is_dir()))
def test_every_plugin_folder_is_installed_and_registers_variants(folder, registry):
    """A plugin in the repo that is not installed fails here, instead of silently dropping
    out of the conformance tests' parametrization."""
    distribution = f"augment-{folder}"
    registered = [e for e in registry.entries() if e.plugin.distribution == distribution]
    assert registered, f"plugins/{folder} ({distribution}) is not installed: make install"
    assert all(e.plugin.name == folder for e in registered)


def test_an_empty_registry_is_an_error_that_says_so(monkeypatch):
    from augment.plugins import forget_plugins

    monkeypatch.setenv("AUGMENT_PLUGINS_DISABLE", ",".join(p.name for p in PLUGINS.iterdir()))
    try:
        empty = Registry.from_plugins()
        assert empty.names() == []
        with pytest.raises(UnknownVariantError, match=r"installed: none \(is any augment plugin"):
            empty.get("sngan")
    finally:
        forget_plugins()


def test_the_plugin_manager_is_built_once_per_process():
    from augment.plugins import plugin_manager

    assert plugin_manager() is plugin_manager()


def test_every_hookspec_is_documented_and_implemented():
    """Each hook a plugin can implement has a docstring, is in the architecture document,
    and is implemented by a built-in plugin (so the conformance tests exercise it)."""
    import inspect

    from augment import hookspecs
    from augment.plugins import plugin_manager

    manager, _ = plugin_manager()
    names = [n for n, f in vars(hookspecs).items() if hasattr(f, "augment_spec")]
    assert names, "no hookspecs found"
    architecture = (PLUGINS.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name in names:
        assert inspect.getdoc(getattr(hookspecs, name)), f"hookspec {name} has no docstring"
        assert name in architecture, f"hookspec {name} is not in docs/architecture.md"
        assert getattr(manager.hook, name).get_hookimpls(), f"no plugin implements {name}"


def test_source_path_is_the_top_level_package_or_the_one_module(registry, tmp_path):
    import augment
    from augment.tasks.synthesis import SynthesisVariant

    sngan = registry.get("sngan").cls
    assert source_path(sngan) == (ROOT / "plugins/dcgan/augment_dcgan.py").resolve()
    assert source_path(SynthesisVariant) == Path(augment.__file__).parent.resolve()
    with pytest.raises(PluginError, match="is not a file on disk"):
        source_path(type("Local", (), {"__module__": "__main__"}))


def test_a_plugin_moved_since_its_link_was_made_is_an_error(registry, tmp_path):
    from pipelines._common import check_plugin_source

    sngan = registry.get("sngan").cls
    check_plugin_source("sngan", sngan, tmp_path)  # no link: a stage run by hand
    (tmp_path / "sngan").symlink_to(source_path(sngan))
    check_plugin_source("sngan", sngan, tmp_path)
    (tmp_path / "sngan").unlink()
    (tmp_path / "sngan").symlink_to(tmp_path / "elsewhere.py")
    with pytest.raises(ConfigError, match="re-installed elsewhere.*dvc repro -f plugin_sources"):
        check_plugin_source("sngan", sngan, tmp_path)


def test_a_knob_a_variant_declares_unsupported_is_refused(registry):
    """A variant that replaces what reads an inherited knob says so (``unsupported``), and a
    recipe setting it fails naming it, instead of training as if it were not there."""
    base = registry.get("cgan").cls

    class OwnLoss(base):
        name = "own-loss"
        unsupported = frozenset({"mode_seeking", "r1"})

    own = Registry()
    own.register(OwnLoss, PluginInfo("own", "test-own", "0"))
    own.create("own-loss", {"lr_g": 1e-4}, SPEC)  # a knob it uses: fine
    own.create("own-loss", {"mode_seeking": 0.0}, SPEC)  # at its default (a checkpoint's dump)
    # a tuple knob at its default, as YAML and a checkpoint's dump give it: a list
    infogan = registry.get("infogan").cls
    assert "transition" in infogan.unsupported
    registry.create("infogan", {"transition": [0.0, 0.0]}, SPEC)
    with pytest.raises(ConfigError, match=r"recipes.infogan.transition: infogan does not use"):
        registry.create("infogan", {"transition": [0.1, 0.5]}, SPEC)
    with pytest.raises(ConfigError, match=r"recipes.own-loss.mode_seeking: own-loss does not use"):
        own.create("own-loss", {"mode_seeking": 0.2}, SPEC)

    class Typo(base):
        name = "typo"
        unsupported = frozenset({"mode_seekin"})

    with pytest.raises(PluginError, match="unsupported names no Params field"):
        Registry().register(Typo, PluginInfo("t", "t", "0"))
