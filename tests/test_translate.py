"""The translate stage's library: training data per recipe, translating a domain, judging it."""

from __future__ import annotations

import numpy as np
import pytest

from augment.config import parse
from augment.data.domains import DomainsConfig, build_domains, write_domains
from augment.data.images import load_images
from augment.data.manifest import Manifest
from augment.errors import DataError, ModelError
from augment.registry import Registry
from augment.runtime import OnnxGenerator
from augment.translate import (
    LabelFilterConfig,
    adaptation,
    domain_part,
    label_agreement,
    reads_layouts,
    report_markdown,
    training_data,
    translate_domain,
    translation_grid,
)

UCI = {"data": {"kind": "sklearn-digits"}}
CONFIG = {
    "source": "plain",
    "target": "inverted",
    "image_size": 8,
    "channels": 1,
    "limit_per_class": 30,
    "sets": {"plain": UCI, "inverted": UCI | {"style": "inverted"}, "flipped": UCI},
}


def load(part: Manifest) -> tuple[np.ndarray, np.ndarray]:
    loaded = load_images(part, progress=False)
    return loaded.images, loaded.labels


@pytest.fixture(scope="module")
def domains(tmp_path_factory) -> tuple[DomainsConfig, Manifest]:
    config = parse(DomainsConfig, CONFIG, "params.yaml domains")
    root = tmp_path_factory.mktemp("domains") / "domains"
    return config, write_domains(build_domains(config, seed=0), root)


def test_training_data_hides_the_target_labels(domains) -> None:
    config, manifest = domains
    registry = Registry.from_plugins()
    cyclegan = training_data(manifest, config, registry.get("cyclegan").cls, load)
    assert cyclegan.domain_names == ("plain", "inverted")
    assert set(cyclegan.labels[cyclegan.domain == 1]) == {-1}
    assert (cyclegan.labels[cyclegan.domain == 0] >= 0).all()

    stargan = training_data(manifest, config, registry.get("stargan").cls, load)
    assert stargan.domain_names == ("plain", "inverted", "flipped")
    assert set(stargan.labels[stargan.domain == 1]) == {-1}
    assert (stargan.labels[stargan.domain == 2] >= 0).all()

    pix2pix = training_data(manifest, config, registry.get("pix2pix").cls, load)
    assert np.array_equal(pix2pix.target, 255 - pix2pix.images)  # (plain, inverted) pairs
    assert set(pix2pix.labels) == {-1}

    unstyled = config.model_copy(update={"target": "flipped"})
    with pytest.raises(DataError, match="pix2pix needs pairs, but domain 'flipped' has no"):
        training_data(manifest, unstyled, registry.get("pix2pix").cls, load)


def test_unpaired_recipes_get_each_image_s_plain_original(domains) -> None:
    """Where a domain has a style, an unpaired translator whose recipe reads layouts gets
    the plain image behind each of its images (the inverted digits' originals), and a plain
    domain's images are their own; without a styled domain, or for a recipe that reads no
    layout, none is loaded."""
    config, manifest = domains
    registry = Registry.from_plugins()
    for name in ("cyclegan", "stargan"):
        data = training_data(manifest, config, registry.get(name).cls, load, layouts=True)
        inverted = data.domain == 1
        assert np.array_equal(data.plain[inverted], 255 - data.images[inverted])
        assert np.array_equal(data.plain[~inverted], data.images[~inverted])
        assert training_data(manifest, config, registry.get(name).cls, load).plain is None
        assert reads_layouts(registry.validate(name, {"shape": 1.0}))
        assert not reads_layouts(registry.validate(name, {}))
    assert not reads_layouts(registry.validate("spade", {}))  # pairs: no shape term
    unstyled = config.model_copy(update={"target": "flipped"})
    cyclegan = registry.get("cyclegan").cls
    assert training_data(manifest, unstyled, cyclegan, load, layouts=True).plain is None


def test_translate_domain_writes_labeled_synthetic_rows_and_judges_them(
    domains, tiny_models, tmp_path
) -> None:
    config, manifest = domains
    generator = OnnxGenerator(tiny_models["stargan"])  # domain 1 ('inverted') negates the image
    out = tmp_path / "translated"
    translation = translate_domain(generator, manifest, config, out, load, batch_size=7, seed=5)
    images, labels, translated = translation.images, translation.labels, translation.translated
    assert np.array_equal(translated, 255 - images) and translation.images_per_second > 0
    assert translation.kept is None  # no filter unless asked

    written = Manifest.read(out / "manifest.csv")
    frame = written.frame
    assert len(frame) == len(images) and written.classes == manifest.classes
    assert set(frame["source"]) == {"synthetic"} and set(frame["split"]) == {"train"}
    assert set(frame["domain"]) == {"inverted"} and set(frame["seed"]) == {"5"}
    assert set(frame["model_sha256"]) == {generator.sha256}
    reread, relabels = load(written)
    assert np.array_equal(np.sort(relabels), np.sort(labels))
    assert sorted(map(bytes, reread)) == sorted(map(bytes, translated))

    names = [manifest.classes[k] for k in labels]
    grid = translation_grid(generator, images, translated, names, "plain", count=4)
    assert grid.shape[0] == 2 + 4 * (64 + 2)  # four rows of 8x8 tiles zoomed to 64
    row = grid[2:66, -3 * 66 :]  # the first row's tiles: source | translated | back
    source, there, back = (row[:, k * 66 : k * 66 + 64] for k in range(3))
    assert np.array_equal(there, 255 - source)
    assert np.array_equal(back, there)  # this model's "into plain" keeps its input

    target_train = load(domain_part(manifest, "inverted", "train"))
    target_test = load(domain_part(manifest, "inverted", "test"))
    result = adaptation(
        "tiny",
        config,
        (images, labels),
        translated,
        target_train,
        target_test,
        list(manifest.classes),
        epochs=15,
        seed=0,
    )
    a = result.accuracy
    assert a["translated"] > a["source_only"] + 0.2  # inverted digits fool a plain classifier
    assert result.gap_closed is not None and result.gap_closed > 0.5
    assert result.label_preservation > 0.8
    assert set(result.preservation_per_class) == set(manifest.classes)


def test_the_label_filter_finds_changed_digits_without_target_labels(domains) -> None:
    """Translations whose digit changed are what the filter must drop: here a fifth of
    real digits carry another class's label, and the out-of-fold probabilities of those
    labels are low, of the others high."""
    _, manifest = domains
    images, labels = load(domain_part(manifest, "plain", "train"))
    rng = np.random.default_rng(0)
    changed = rng.random(len(labels)) < 0.2
    noisy = labels.copy()
    k = len(manifest.classes)
    noisy[changed] = (labels[changed] + rng.integers(1, k, changed.sum())) % k
    scores = label_agreement(images, noisy, k, folds=2, steps=200, seed=0)
    kept = scores >= 0.5
    assert kept[~changed].mean() > 0.7 and kept[changed].mean() < 0.1  # 150 images a fold
    assert scores.dtype == np.float32 and ((scores >= 0) & (scores <= 1)).all()


def test_the_stage_writes_only_what_the_label_filter_keeps(domains, tiny_models, tmp_path):
    config, manifest = domains
    generator = OnnxGenerator(tiny_models["stargan"])
    label_filter = LabelFilterConfig(enabled=True, threshold=0.5)
    out = tmp_path / "kept"
    translation = translate_domain(
        generator, manifest, config, out, load, seed=5, label_filter=label_filter, epochs=15
    )
    assert translation.kept is not None and translation.scores is not None
    assert 0 < translation.kept.sum() <= len(translation.labels)
    assert len(Manifest.read(out / "manifest.csv")) == translation.kept.sum()
    result = adaptation(
        "tiny", config, (translation.images, translation.labels), translation.translated,
        load(domain_part(manifest, "inverted", "train")),
        load(domain_part(manifest, "inverted", "test")),
        list(manifest.classes), epochs=15, seed=0, kept=translation.kept,
    )  # fmt: skip
    assert result.kept == translation.kept.sum()
    assert set(result.acceptance_per_class or {}) == set(manifest.classes)
    assert "kept by the filter" in report_markdown(result, reconstructed=False)
    impossible = LabelFilterConfig(enabled=True, threshold=1.0)
    with pytest.raises(DataError, match="no translation reaches threshold 1.0"):
        translate_domain(generator, manifest, config, tmp_path / "none", load,
                         label_filter=impossible, epochs=1)  # fmt: skip
    assert not (tmp_path / "none").exists()


def test_a_model_that_does_not_know_the_domains_is_refused(domains, tiny_models, tmp_path):
    config, manifest = domains
    other = config.model_copy(update={"target": "flipped"})
    with pytest.raises(ModelError, match="unknown domain 'flipped' \\(domains: plain, inverted\\)"):
        translate_domain(
            OnnxGenerator(tiny_models["stargan"]), manifest, other, tmp_path / "x", load
        )
    assert not (tmp_path / "x").exists()


def test_the_target_domain_reaches_a_stargan_generator() -> None:
    """A one-hot domain map concatenated to the input would be erased by the first instance
    norm (reflect padding keeps it constant); the modulated norms must carry it through."""
    import torch

    from augment.nn.translate import ResnetGenerator

    torch.manual_seed(0)
    generator = ResnetGenerator(3, width=8, blocks=2, num_domains=3).eval()
    for name, weight in generator.named_parameters():
        if "film.weight" in name:  # weights of the size training gives them
            torch.nn.init.normal_(weight)
    image = torch.rand(2, 3, 20, 20) * 2 - 1
    into = [generator(image, torch.full((2,), d)) for d in range(3)]
    assert all((into[0] - other).abs().max() > 0.05 for other in into[1:])


def test_stargan_identity_term_is_the_own_domain_l1(registry) -> None:  # noqa: ANN001
    """``identity`` w > 0 adds w * |G(x, d(x)) - x|_1 to StarGAN's generator loss: the same
    networks and batch cost exactly that much more than with ``identity`` 0."""
    import torch

    from augment.variant import DataSpec

    data = DataSpec(16, 1, tuple("01"), domains=("plain", "styled", "inverted"))
    recipe = {"width": 8, "blocks": 1, "lr_decay": "none"}
    plain = registry.create("stargan", recipe, data, seed=0)
    anchored = registry.create("stargan", recipe | {"identity": 2.0}, data, seed=0)
    for a, b in zip(plain.generator.parameters(), anchored.generator.parameters(), strict=True):
        assert torch.equal(a, b)  # the same seed: the same networks
    torch.manual_seed(0)
    image = torch.rand(6, 1, 16, 16) * 2 - 1
    domain = torch.tensor([0, 1, 2, 0, 1, 2])
    batch = {"image": image, "domain": domain, "label": torch.tensor([0, -1, 1, 1, -1, 0])}
    with torch.no_grad():
        expected = torch.nn.functional.l1_loss(plain.generator(image, domain, None), image)
        torch.manual_seed(1)  # the same random target domains for both
        without = plain.generator_loss(batch)
        torch.manual_seed(1)
        with_identity = anchored.generator_loss(batch)
    assert "identity" not in without.logs
    assert with_identity.logs["identity"] == pytest.approx(expected.item(), rel=1e-5)
    difference = (with_identity.loss - without.loss).item()
    assert difference == pytest.approx(2.0 * expected.item(), rel=1e-4)


@pytest.mark.parametrize(
    ("name", "knob"),
    [("stargan", "pool_size"), ("cyclegan", "gradient_penalty"), ("pix2pix", "cycle")],
)
def test_a_translator_refuses_a_knob_it_does_not_read(registry, name: str, knob: str) -> None:  # noqa: ANN001
    """A knob of the family's Params that this recipe never reads is a one-line error
    naming it, not a silent no-op."""
    from augment.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"recipes\.{name}\.{knob}: {name} does not use"):
        registry.validate(name, {knob: 3.0}, "recipes")
