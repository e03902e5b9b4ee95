"""The generator-backed albumentations transforms, on tiny exported models."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import albumentations as A
import numpy as np
import pytest

from augment.errors import ConfigError, DataError, ModelError
from augment.transforms import GANSynthesize, GANTranslate, GANUpscale, balancing_probabilities

CLASSES = ("a", "b", "c", "d", "e")


def gray(height: int = 8, width: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 1), dtype=np.uint8)


def outputs(compose: A.Compose, n: int = 24) -> list[np.ndarray]:
    image = gray()
    return [compose(image=image, class_label=i % 5)["image"] for i in range(n)]


# -- GANSynthesize ------------------------------------------------------------------------


def test_synthesize_replaces_with_a_sample_of_the_class(tiny_models: dict[str, Path]) -> None:
    model = tiny_models["synthesize"]
    image = gray()
    out = A.Compose([GANSynthesize(model, p=1.0)], seed=0)(image=image, class_label="c")
    assert out["class_label"] == "c"
    assert out["image"].shape == image.shape and out["image"].dtype == np.uint8
    assert not np.array_equal(out["image"], image)
    # The sample is the generator's: it is one of a fresh batch of class 'c' made the same way.
    transform = GANSynthesize(model, p=1.0, buffer_size=4)
    transform.set_random_seed(3)
    first = transform(image=image, class_label=2)["image"]
    from augment.runtime import OnnxGenerator, to_uint8

    seed = int(np.random.default_rng(3).integers(2**63 - 1))
    expected = to_uint8(OnnxGenerator(model).generate(np.full(4, 2), seed, 4))[0]
    np.testing.assert_array_equal(first, expected)


def test_same_seed_same_outputs_other_seed_others(tiny_models: dict[str, Path]) -> None:
    def run(seed: int) -> list[np.ndarray]:
        transforms = [GANSynthesize(tiny_models["synthesize"], p=0.5), A.HorizontalFlip()]
        return outputs(A.Compose(transforms, seed=seed))

    first, again, other = run(1), run(1), run(2)
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other, strict=True))


def test_sample_takes_the_input_size_channels_and_dtype(tiny_models: dict[str, Path]) -> None:
    compose = A.Compose([GANSynthesize(tiny_models["synthesize"], p=1.0)], seed=0)
    rgb = compose(image=np.zeros((20, 24, 3), np.float32), class_label=1)["image"]
    assert rgb.shape == (20, 24, 3) and rgb.dtype == np.float32
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0 and rgb.std() > 0
    assert np.array_equal(rgb[..., 0], rgb[..., 2])  # gray model, replicated to RGB
    flat = compose(image=np.zeros((8, 8), np.uint8), class_label=1)["image"]
    assert flat.shape == (8, 8) and flat.dtype == np.uint8


def test_class_p_replaces_only_the_classes_named(tiny_models: dict[str, Path]) -> None:
    transform = GANSynthesize(tiny_models["synthesize"], class_p={"a": 1.0, 1: 0.0}, p=1.0)
    assert transform.class_p == {"a": 1.0, "b": 0.0}
    compose = A.Compose([transform], seed=0)
    image = gray()
    for label, replaced in (("a", True), ("b", False), ("e", False)):
        for _ in range(5):
            out = compose(image=image, class_label=label)["image"]
            assert np.array_equal(out, image) != replaced


def test_balancing_probabilities() -> None:
    assert balancing_probabilities({"a": 100, "b": 25, "c": 0}) == {"a": 0.0, "b": 0.75, "c": 1.0}
    with pytest.raises(DataError, match="no class"):
        balancing_probabilities({"a": 0})


def test_reuse_hands_each_sample_out_that_many_times(tiny_models: dict[str, Path]) -> None:
    image = gray()
    for reuse in (1, 3):
        compose = A.Compose(
            [GANSynthesize(tiny_models["synthesize"], p=1.0, buffer_size=4, reuse=reuse)], seed=0
        )
        seen = [compose(image=image, class_label=0)["image"].tobytes() for _ in range(12)]
        assert len(set(seen)) == 12 // reuse
        assert all(seen[i] == seen[i + 4] for i in range(4)) == (reuse > 1)


def test_label_errors(tiny_models: dict[str, Path]) -> None:
    compose = A.Compose([GANSynthesize(tiny_models["synthesize"], p=1.0)])
    with pytest.raises(DataError, match="class_label="):
        compose(image=gray())
    with pytest.raises(ModelError, match=r"unknown class 'zebra' \(classes: a, b, c, d, e\)"):
        compose(image=gray(), class_label="zebra")
    with pytest.raises(ModelError, match="unknown class 7"):
        compose(image=gray(), class_label=7)
    with pytest.raises(DataError, match="not an index or a name"):
        compose(image=gray(), class_label=True)
    with pytest.raises(ModelError, match="unknown class 'zebra'"):
        GANSynthesize(tiny_models["synthesize"], class_p={"zebra": 0.5})
    with pytest.raises(DataError, match=r"class_p\['a'\] = 2"):
        GANSynthesize(tiny_models["synthesize"], class_p={"a": 2})


def test_model_errors(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        GANSynthesize(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="is a 'translate' model .* 'synthesize' model is needed"):
        GANSynthesize(tiny_models["translate"])
    with pytest.raises(ModelError, match="is a 'synthesize' model .* 'upscale' model is needed"):
        GANUpscale(tiny_models["synthesize"])
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(tiny_models["synthesize"].read_bytes()[:500])
    with pytest.raises(ModelError, match="broken.onnx: not a readable ONNX file"):
        GANSynthesize(broken)


# -- serialization ------------------------------------------------------------------------


def test_to_dict_from_dict_and_yaml_round_trip(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    compose = A.Compose(
        [
            GANSynthesize(tiny_models["synthesize"], class_p={"a": 0.5, "c": 1.0}, reuse=2),
            GANTranslate(tiny_models["stargan"], domain="inverted", p=0.3),
            A.HorizontalFlip(),
        ],
        seed=5,
    )
    saved = A.to_dict(compose)
    first = saved["transform"]["transforms"][0]
    assert first["__class_fullname__"] == "augment.transforms.GANSynthesize"
    assert first["sha256"] == GANSynthesize(tiny_models["synthesize"]).sha256
    assert first["class_p"] == {"a": 0.5, "c": 1.0} and first["reuse"] == 2
    restored = A.from_dict(saved)
    A.save(compose, str(tmp_path / "pipeline.yaml"), data_format="yaml")
    from_yaml = A.load(str(tmp_path / "pipeline.yaml"), data_format="yaml")
    for loaded in (restored, from_yaml):
        assert A.to_dict(loaded) == saved
        loaded.set_random_seed(5)
        compose.set_random_seed(5)
        for x, y in zip(outputs(compose), outputs(loaded), strict=True):
            np.testing.assert_array_equal(x, y)


def test_changed_model_file_is_an_error_when_loading(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(tiny_models["translate"], model)
    saved = A.to_dict(A.Compose([GANTranslate(model)]))
    shutil.copy(tiny_models["translate_rgb"], model)  # same name, different model
    with pytest.raises(ModelError, match=r"model.onnx: sha256 .* differs .* \(the model file"):
        A.from_dict(saved)


def test_pickles_without_its_session(tiny_models: dict[str, Path]) -> None:
    transform = GANSynthesize(tiny_models["synthesize"], p=1.0)
    transform(image=gray(), class_label=0)
    assert transform.generator._session is not None
    clone = pickle.loads(pickle.dumps(transform))
    assert clone.generator._session is None
    assert clone(image=gray(), class_label=0)["image"].shape == (8, 8, 1)


# -- GANTranslate ---------------------------------------------------------------------------


def test_translate_one_direction(tiny_models: dict[str, Path]) -> None:
    image = gray(12, 16)  # any size: height and width are dynamic
    out = A.Compose([GANTranslate(tiny_models["translate"], p=1.0)])(image=image)["image"]
    np.testing.assert_array_equal(out, 255 - image)
    as_float = GANTranslate(tiny_models["translate"], p=1.0)(image=image / np.float32(255))
    np.testing.assert_allclose(as_float["image"], 1 - image / 255.0, atol=1e-6)
    with pytest.raises(ModelError, match=r"translates plain -> inverted only, not into 'plain'"):
        GANTranslate(tiny_models["translate"], domain="plain", p=1.0)(image=image)


def test_translate_multi_domain(tiny_models: dict[str, Path]) -> None:
    image = gray()
    model = tiny_models["stargan"]
    inverted = GANTranslate(model, domain="inverted", p=1.0)(image=image)["image"]
    np.testing.assert_array_equal(inverted, 255 - image)
    np.testing.assert_array_equal(GANTranslate(model, domain=0, p=1.0)(image=image)["image"], image)
    with pytest.raises(ModelError, match=r"needs domain= \(domains: plain, inverted\)"):
        GANTranslate(model)
    with pytest.raises(ModelError, match=r"unknown domain 'sepia' \(domains: plain, inverted\)"):
        GANTranslate(model, domain="sepia")


def test_translate_draws_fresh_noise_for_a_stochastic_model(tiny_models: dict[str, Path]) -> None:
    image = gray(12, 16)
    transform = GANTranslate(tiny_models["noisy"], p=1.0)
    transform.set_random_seed(3)
    first, second = (transform(image=image)["image"].astype(int) for _ in range(2))
    for out in (first, second):  # -image shifted by one noise number per image
        shift = (out - (255 - image))[(out > 0) & (out < 255)]
        assert shift.std() < 1.0
    assert not np.array_equal(first, second)
    transform.set_random_seed(3)
    np.testing.assert_array_equal(transform(image=image)["image"], first)


def test_translate_rejects_a_channel_count_the_model_cannot_take(
    tiny_models: dict[str, Path],
) -> None:
    transform = GANTranslate(tiny_models["translate_rgb"], p=1.0)
    with pytest.raises(DataError, match=r"image has 1 channel\(s\), but .* takes 3"):
        transform(image=gray())
    assert transform(image=np.zeros((8, 8, 3), np.uint8))["image"].max() == 255


# -- GANUpscale -----------------------------------------------------------------------------


def test_upscale_scales_image_mask_boxes_and_keypoints(tiny_models: dict[str, Path]) -> None:
    image = gray(10, 14)
    mask = np.random.default_rng(1).integers(0, 4, (10, 14), dtype=np.uint8)
    compose = A.Compose(
        [GANUpscale(tiny_models["upscale"])],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["box_labels"]),
        keypoint_params=A.KeypointParams(format="xy"),
    )
    out = compose(
        image=image,
        mask=mask,
        bboxes=[(1, 2, 9, 8)],
        box_labels=[1],
        keypoints=[(3.5, 4.0), (12.0, 9.5)],
    )
    np.testing.assert_array_equal(out["image"], image.repeat(2, axis=0).repeat(2, axis=1))
    np.testing.assert_array_equal(out["mask"], mask.repeat(2, axis=0).repeat(2, axis=1))
    np.testing.assert_allclose(out["bboxes"], [[2, 4, 18, 16]], atol=1e-4)
    np.testing.assert_allclose(out["keypoints"], [[7.0, 8.0], [24.0, 19.0]], atol=1e-4)
    with pytest.raises(DataError, match="image has 3 channel"):
        compose(image=np.zeros((10, 14, 3), np.uint8), mask=mask, bboxes=[], box_labels=[])


# -- in a real DataLoader ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_manifest(
    tmp_path_factory: pytest.TempPathFactory, mnist_small: tuple[np.ndarray, np.ndarray]
) -> Path:
    """32 real digits as classes a-e (the tiny synthesize model's classes)."""
    from augment.data.images import write_png
    from augment.data.manifest import Manifest

    root = tmp_path_factory.mktemp("digits")
    images, labels = mnist_small
    rows = []
    for i, (image, label) in enumerate(zip(images[:32], labels[:32], strict=True)):
        write_png(root / f"{i}.png", image)
        rows.append({"path": f"{i}.png", "label": CLASSES[int(label) % 5]})
    Manifest.from_rows(rows, root).write(root / "manifest.csv")
    return root / "manifest.csv"


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_in_a_dataloader_with_two_workers(
    tiny_models: dict[str, Path], digits_manifest: Path, context: str
) -> None:
    import torch
    from torch.utils.data import DataLoader

    from augment.data.dataset import ManifestDataset

    gan = GANSynthesize(tiny_models["synthesize"], p=0.5, buffer_size=8)
    compose = A.Compose([gan, A.HorizontalFlip()], seed=0)
    data = ManifestDataset(digits_manifest, transform=compose)
    loader = DataLoader(data, batch_size=8, num_workers=2, multiprocessing_context=context)

    def epoch() -> torch.Tensor:
        torch.manual_seed(0)
        return torch.cat([images for images, _ in loader])

    first, again = epoch(), epoch()
    assert torch.equal(first, again)  # same torch seed, same augmentations in every worker
    plain = ManifestDataset(digits_manifest)
    real = torch.stack([plain[i][0] for i in range(len(plain))])
    pairs = zip(first, real, strict=True)
    kept = sum(torch.equal(x, r) or torch.equal(x, r.flip(-1)) for x, r in pairs)
    replaced = len(real) - kept
    assert 4 <= replaced <= 28  # about half of 32 replaced with p=0.5
    assert gan.generator._session is None  # sessions opened in the workers only


# -- tiled upscaling --------------------------------------------------------------------------


def test_tile_spans_partition_the_axis() -> None:
    from augment.tiling import tile_spans

    for length, tile, overlap in ((40, 16, 4), (16, 16, 4), (7, 16, 4), (33, 10, 0)):
        spans = tile_spans(length, tile, overlap)
        covered = np.concatenate([np.arange(length)[core] for core, _ in spans])
        np.testing.assert_array_equal(covered, np.arange(length))
        for core, window in spans:
            assert window.stop - window.start <= tile
            assert window.start == max(0, core.start - overlap)
            assert window.stop == min(length, core.stop + overlap)


def test_tiled_upscale_equals_untiled(tiny_models: dict[str, Path]) -> None:
    """A model with receptive radius 3: overlap 4 shows no seams, overlap 0 does."""
    from augment.runtime import OnnxGenerator, from_uint8

    model = OnnxGenerator(tiny_models["conv_upscale"])
    image = from_uint8(gray(40, 52, seed=3)[None])
    whole = model.upscale(image, tile=None)
    assert whole.shape == (1, 1, 80, 104)
    tiled = model.upscale(image, tile=16, overlap=4)  # 4 x 5 tiles
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    seams = model.upscale(image, tile=16, overlap=0)
    assert np.abs(seams - whole).max() > 1e-2
    with pytest.raises(ConfigError, match=r"tile \(8\) must be larger than twice the overlap"):
        model.upscale(image, tile=8, overlap=4)


def test_gan_upscale_tiles_large_images(tiny_models: dict[str, Path]) -> None:
    image = gray(40, 52, seed=4)
    whole = GANUpscale(tiny_models["conv_upscale"], tile=None)(image=image)["image"]
    tiled = GANUpscale(tiny_models["conv_upscale"], tile=20, overlap=4)(image=image)["image"]
    assert tiled.shape == (80, 104, 1)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1  # uint8 rounding only
    saved = A.to_dict(GANUpscale(tiny_models["conv_upscale"], tile=20, overlap=4))
    assert saved["transform"]["tile"] == 20 and saved["transform"]["overlap"] == 4
    with pytest.raises(ConfigError, match=r"tile \(8\) must be larger than twice the overlap"):
        GANUpscale(tiny_models["conv_upscale"], tile=8, overlap=4)
