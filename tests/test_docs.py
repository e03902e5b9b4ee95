"""The documentation: every relative link in README.md and docs/ resolves inside the repo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def heading_anchors(document: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped,
    spaces -> '-' (none for other files)."""
    if document.suffix != ".md":
        return set()
    markdown = document.read_text(encoding="utf-8")
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repo(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        inside = resolved.is_relative_to(ROOT) and resolved.exists()
        if not inside or (anchor and anchor not in heading_anchors(resolved)):
            broken.append(target)
    assert not broken, f"{document.name}: links that do not resolve: {broken}"


# -- the layers of docs/architecture.md ---------------------------------------------------
LAYERS: dict[str, int] = {  # module (or package prefix) -> layer; the longest prefix wins
    "augment.errors": 0,
    "augment.io": 0,
    "augment.seeding": 0,
    "augment.config": 0,
    "augment.tasks": 0,
    "augment.hookspecs": 0,
    "augment.model_contract": 1,
    "augment.runtime": 1,
    "augment.tiling": 1,
    "augment.latent_codes": 1,
    "augment.transforms": 1,
    "augment.metrics": 1,
    "augment.data": 1,
    "augment.planning": 1,
    "augment.nn": 2,
    "augment.losses": 2,
    "augment.distributed": 2,
    "augment.data.batches": 2,
    "augment.data.dataset": 2,
    "augment.variant": 3,
    "augment.tasks.synthesis": 4,
    "augment.tasks.upscale": 4,
    "augment.tasks.translate": 4,
    "augment.tasks.inpaint": 4,
    "augment.tasks.mask2image": 4,
    "augment.checkpoint": 5,
    "augment.previews": 5,
    "augment.train": 5,
    "augment.export": 5,
    "augment.plugins": 5,
    "augment.registry": 5,
    "augment": 6,  # every other module of the package
    "augment.cli": 7,
}


def layer_of(module: str) -> int:
    prefixes = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(prefixes, key=len)]


def imports_of(path: Path) -> set[str]:
    """Every module of ours that ``path`` imports, at the top or inside a function (imports
    for type checkers only, under ``if TYPE_CHECKING:``, do not count)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    found.discard("augment")  # `from augment import x`: the module x (or a lazy name)
    return {m for m in found if m.split(".")[0] in ("augment", "pipelines", "tests")}


def test_layers_import_only_downwards() -> None:
    """No module of augment/ imports one of a higher layer (see docs/architecture.md)."""
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (ROOT / "augment").rglob("*.py")
    }
    upward = []
    for module, path in sorted(modules.items()):
        if module == "augment":  # the lazy re-exports of the package itself
            continue
        for imported in sorted(imports_of(path)):
            if not imported.startswith("augment"):
                upward.append(f"{module} -> {imported}")
                continue
            target = max(
                (m for m in modules if imported == m or imported.startswith(m + ".")), key=len
            )
            if layer_of(target) > layer_of(module):
                upward.append(
                    f"{module} (layer {layer_of(module)}) -> {target} (layer {layer_of(target)})"
                )
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_the_readme_plugin_example_registers_and_trains(tmp_path: Path, mnist_small) -> None:
    """The plugin of README.md's Writing a plugin section, as printed: it registers through its
    hook, builds, and trains a step in the one loop."""
    from augment.data.batches import TrainingData
    from augment.plugins import PluginInfo
    from augment.registry import Registry
    from augment.train import TrainConfig, TrainOutputs, fit
    from augment.variant import DataSpec

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "hookimpl" in b)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    registry = Registry()
    info = PluginInfo("tinygan", "augment-tinygan", "0")
    namespace["augment_register_variants"](register=lambda v: registry.register(v, info))
    variant = registry.create("tiny-gan", {}, DataSpec(28, 1, tuple("0123456789")))
    assert variant.params.loss == "hinge" and variant.params.width == 16
    config = TrainConfig(steps=1, batch_size=16)
    outputs = TrainOutputs(tmp_path / "c.pt", tmp_path / "s", tmp_path / "l.csv")
    assert fit(variant, TrainingData(*mnist_small), config, outputs, 0, progress=False).steps == 1


def test_the_plugin_guide_works_as_written(tmp_path: Path) -> None:
    """docs/plugins.md, followed to the letter: its pyproject.toml and module pip-install
    (for real, with the entry point), `augment plugins list` shows the variant, and the
    guide's own test passes against the installed plugin."""
    import os
    import subprocess
    import sys

    from workspace import install_guide_plugin

    source, site = install_guide_plugin(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(site)}
    listed = subprocess.run(
        [sys.executable, "-m", "augment.cli", "plugins", "list"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert listed.returncode == 0 and "tiny-gan" in listed.stdout, listed.stderr
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr[-2000:]


def test_augment_plugins_new_writes_the_guide_s_package(tmp_path: Path) -> None:
    """The template is the guide's text, so the guide test above covers what it writes."""
    import subprocess
    import sys

    from workspace import guide_blocks

    command = [sys.executable, "-m", "augment.cli", "plugins", "new", "tiny-gan"]
    made = subprocess.run([*command, "--dir", str(tmp_path)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "augment-tinygan"
    assert {p.name: p.read_text() for p in folder.iterdir()} == guide_blocks()
    again = subprocess.run([*command, "--dir", str(tmp_path)], capture_output=True, text=True)
    assert again.returncode != 0 and "augment-tinygan: already exists" in again.stderr
    bad = subprocess.run([*command[:-1], "Tiny GAN"], capture_output=True, text=True)
    assert bad.returncode != 0 and "plugin name 'Tiny GAN'" in bad.stderr


def test_plugin_names_follow_the_variant_name() -> None:
    from augment.plugin_template import PluginNames, plugin_files

    names = PluginNames.of("style-gan-2")
    assert (names.module, names.distribution, names.cls) == (
        "augment_stylegan2",
        "augment-stylegan2",
        "StyleGAN2",
    )
    module = plugin_files("style-gan-2")["augment_stylegan2.py"]
    compile(module, "augment_stylegan2.py", "exec")  # valid Python
    assert 'name = "style-gan-2"' in module and "register(StyleGAN2)" in module
