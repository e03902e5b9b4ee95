"""The latent inputs of synthesize models. InfoGAN's codes: their layout and arithmetic,
drawing them independently of how a job is batched, setting and sweeping them through
every path (OnnxGenerator.generate, ``augment generate`` with shards, GANSynthesize), the
errors, and the infogan recipe's information term. The truncation trick: the truncated
normal by hand, recorded at export and applied wherever the model is sampled."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import albumentations as A
import numpy as np
import onnx
import pytest
import torch
from augment_infogan import draw_codes, information_loss
from tiny import SPEC, outputs

from augment.data.batches import TrainingData
from augment.errors import ConfigError, ExportError, ModelError
from augment.generate import Shard, generate_folder, merge_shards, read_job
from augment.latent_codes import CodeChoice, CodeLayout, LatentStream
from augment.runtime import OnnxGenerator
from augment.train import TrainConfig, fit
from augment.transforms import GANSynthesize
from augment.variant import DataSpec

ROOT = Path(__file__).resolve().parents[1]

LAYOUT = CodeLayout(continuous=2, categorical=(3,))


def test_codes_from_uniform_numbers_by_hand():
    """continuous 2u - 1; a categorical code floor(u k) one-hot (u = 1 stays in range)."""
    u = np.array([[0.0, 0.75, 0.5], [1.0, 0.25, 0.999], [0.5, 0.5, 0.0]], np.float32)
    codes = LAYOUT.codes(u)
    assert codes.shape == (3, LAYOUT.dim) == (3, 5)
    np.testing.assert_allclose(codes[:, :2], [[-1.0, 0.5], [1.0, -0.5], [0.0, 0.0]])
    np.testing.assert_array_equal(codes[:, 2:], [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    assert LAYOUT.names == ("c0", "c1", "k0")
    assert CodeLayout.from_metadata('{"continuous": 2, "categorical": [3]}') == LAYOUT
    # the recipe draws its training codes the same way from the same uniform numbers
    torch.manual_seed(0)
    drawn, uniform = draw_codes(LAYOUT, 7, torch.device("cpu"))
    np.testing.assert_allclose(drawn.numpy(), LAYOUT.codes(uniform.numpy()), atol=1e-6)


def test_fixed_and_swept_codes_by_hand():
    choice = CodeChoice.parse(["c1=0.5", "k0=2"], sweep="c0")
    choice.check(LAYOUT, "model")
    u = np.random.default_rng(0).random((5, 3))
    codes = choice.apply(LAYOUT, u, np.arange(5), 5)
    np.testing.assert_allclose(codes[:, 0], [-1.0, -0.5, 0.0, 0.5, 1.0])  # the sweep
    np.testing.assert_allclose(codes[:, 1], 0.5)
    np.testing.assert_array_equal(codes[:, 2:], [[0, 0, 1]] * 5)
    assert choice.describe() == "c1=0.5;k0=2;sweep=c0"


@pytest.mark.parametrize(
    ("assignments", "sweep", "message"),
    [
        (["c0"], None, "expected NAME=VALUE"),
        (["c0=abc"], None, "expected NAME=VALUE"),
        (["c7=0"], None, "unknown code 'c7' (codes: c0, c1, k0)"),
        (["c0=1.5"], None, "c0=1.5 is outside [-1, 1]"),
        (["k0=3"], None, "k0=3 is not one of 0..2"),
        (["k0=0.5"], None, "k0=0.5 is not one of 0..2"),
        ([], "k0", "only continuous codes sweep"),
        (["c0=0"], "c0", "both fixed and swept"),
    ],
)
def test_bad_codes_are_errors_that_name_the_code(assignments, sweep, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        CodeChoice.parse(assignments, sweep).check(LAYOUT, "model")


def test_the_latent_stream_ignores_batching_and_leaves_z_alone():
    """Images get the same inputs however a job is cut; z is the stream of a model without
    codes (its outputs are unchanged by the code input existing)."""
    whole = LatentStream(8, LAYOUT, seed=5, count=5).next(5)
    stream = LatentStream(8, LAYOUT, seed=5, count=5)
    parts = [stream.next(2), stream.next(3)]
    for key in ("z", "code"):
        np.testing.assert_array_equal(whole[key], np.concatenate([p[key] for p in parts]))
    plain = LatentStream(8, None, seed=5, count=5).next(5)
    assert set(plain) == {"z"}
    np.testing.assert_array_equal(plain["z"], whole["z"])


def test_generate_draws_sets_and_sweeps_codes(tiny_models):
    model = OnnxGenerator(tiny_models["infogan"], task="synthesize")
    assert model.codes == LAYOUT and "code" in model.input_names
    labels = [0, 1, 2, 3, 4] * 2
    drawn = model.generate(labels, seed=3)
    assert np.array_equal(drawn, model.generate(labels, seed=3, batch_size=3))
    fixed = model.generate(labels, seed=3, codes=CodeChoice({"c0": 1.0, "k0": 0}))
    assert not np.array_equal(drawn, fixed)
    # the same z with one code changed: only the code moved the image
    other = model.generate(labels, seed=3, codes=CodeChoice({"c0": -1.0, "k0": 0}))
    assert not np.array_equal(fixed, other)
    with pytest.raises(ConfigError, match="unknown code 'c5'"):
        model.generate(labels, seed=3, codes=CodeChoice({"c5": 0.0}))
    plain = OnnxGenerator(tiny_models["synthesize"], task="synthesize")
    assert plain.codes is None
    with pytest.raises(ConfigError, match="has no latent codes to set"):
        plain.generate(labels, seed=3, codes=CodeChoice({"c0": 0.0}))


def test_sharded_sweep_equals_one_run_and_is_recorded(tiny_models, tmp_path):
    """A sweep spans each class's images even when shards make them (the merge checks
    the shards agree on the codes); the job records the codes."""
    model = OnnxGenerator(tiny_models["infogan"], task="synthesize")
    choice = CodeChoice({"k0": 1}, sweep="c0")
    whole = tmp_path / "whole"
    generate_folder(model, whole, [0, 2], 300, seed=1, progress=False, codes=choice)
    job, _ = read_job(whole)
    assert job.codes == "k0=1;sweep=c0"
    for k in (1, 2):
        generate_folder(
            model,
            tmp_path / f"part{k}",
            [0, 2],
            300,
            1,
            Shard(k, 2),
            progress=False,
            codes=choice,
        )
    merged = tmp_path / "merged"
    merge_shards([tmp_path / "part1", tmp_path / "part2"], merged, progress=False)
    for path in sorted((whole / "images").rglob("*.png")):
        assert path.read_bytes() == (merged / path.relative_to(whole)).read_bytes(), path
    first, last = (whole / "images/0" / name for name in ("000000.png", "000299.png"))
    assert first.read_bytes() != last.read_bytes()  # c0 = -1 vs c0 = +1


def test_a_sweep_holds_z_and_the_drawn_codes_so_only_the_swept_code_moves():
    stream = LatentStream(8, LAYOUT, seed=2, count=6, choice=CodeChoice(sweep="c1"))
    inputs = [stream.next(4), stream.next(2)]
    z = np.concatenate([i["z"] for i in inputs])
    code = np.concatenate([i["code"] for i in inputs])
    assert (z == z[0]).all()
    np.testing.assert_array_equal(code[:, [0, 2, 3, 4]], np.repeat(code[:1, [0, 2, 3, 4]], 6, 0))
    np.testing.assert_allclose(code[:, 1], np.linspace(-1, 1, 6), atol=1e-6)
    np.testing.assert_array_equal(z[0], LatentStream(8, LAYOUT, seed=2, count=6).next(1)["z"][0])


def test_cli_generate_takes_codes_and_refuses_bad_ones(tiny_models, tmp_path):
    augment = [sys.executable, "-m", "augment.cli", "generate"]
    model = str(tiny_models["infogan"])
    ok = subprocess.run(
        [
            *augment,
            model,
            str(tmp_path / "out"),
            "--per-class",
            "4",
            "--code",
            "c1=0.25",
            "--sweep",
            "c0",
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert read_job(tmp_path / "out")[0].codes == "c1=0.25;sweep=c0"
    for args, message in (
        ([model, "--code", "z0=1"], "error: --code 'z0=1': expected NAME=VALUE"),
        ([model, "--sweep", "c4"], "unknown code 'c4' (codes: c0, c1, k0)"),
        ([str(tiny_models["synthesize"]), "--code", "c0=0"], "has no latent codes to set"),
    ):
        out = tmp_path / "bad"
        bad = subprocess.run(
            [*augment, args[0], str(out), *args[1:]], capture_output=True, text=True
        )
        assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert message in bad.stderr
        assert not out.exists()


def test_gan_synthesize_fixes_codes_and_round_trips_them(tiny_models):
    transform = GANSynthesize(tiny_models["infogan"], codes={"c0": 1.0}, p=1.0)
    compose = A.Compose([transform], seed=0)
    image = compose(image=np.zeros((8, 8, 1), np.uint8), class_label="b")["image"]
    assert image.shape == (8, 8, 1)
    again = A.from_dict(A.to_dict(compose))
    assert again.transforms[0].codes == {"c0": 1.0}
    with pytest.raises(ConfigError, match="unknown code 'k3'"):
        GANSynthesize(tiny_models["infogan"], codes={"k3": 0})


def test_a_code_input_without_its_layout_is_a_contract_error(tiny_models, tmp_path):
    model = onnx.load(str(tiny_models["infogan"]))
    kept = [p for p in model.metadata_props if p.key != "variant.codes"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    path = tmp_path / "no_layout.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match="graph input 'code' and metadata variant.codes"):
        OnnxGenerator(path, task="synthesize")


def test_information_term_by_hand_and_q_learns_the_codes(registry, mnist_small, tmp_path):
    q = torch.tensor([[0.5, -1.0, 2.0, 0.0, 0.0]])
    code = torch.tensor([[1.0, -1.0, 1.0, 0.0, 0.0]])
    expected = 0.5 * 0.25 + float(-torch.log_softmax(torch.tensor([2.0, 0.0, 0.0]), 0)[0])
    assert float(information_loss(LAYOUT, q, code)) == pytest.approx(expected)
    variant = registry.create(
        "infogan", {"continuous_codes": 2, "categorical_codes": [3], "width": 16}, SPEC, seed=0
    )
    config = TrainConfig(
        steps=200,
        batch_size=32,
        checkpoint_every=200,
        sample_every=200,
        log_every=20,
        collapse_warning=0.0,
    )
    fit(variant, TrainingData(*mnist_small), config, outputs(tmp_path), 0, progress=False)
    log = (tmp_path / "losses.csv").read_text().splitlines()
    header, first, last = log[0].split(","), log[1].split(","), log[-1].split(",")
    column = header.index("q_info")
    # from chance (0.5 E[c^2] x 2 codes + log 3 = 1.43) to codes recovered from the images
    assert float(first[column]) > 1.0 and float(last[column]) < 0.5 * float(first[column])


# -- the truncation trick (an export option recorded in the metadata) -----------------------


def test_truncated_normal_by_hand():
    from augment.latent_codes import truncated

    z = np.random.default_rng(0).standard_normal(20_000)
    for t in (0.5, 1.0, 2.0):
        out = truncated(z, t)
        assert np.abs(out).max() <= t and np.all(np.diff(out[np.argsort(z)]) >= 0)  # monotone
    # the truncated normal's variance 1 - 2 t phi(t) / (2 Phi(t) - 1), phi/Phi the normal's
    t = 1.0
    phi, big_phi = np.exp(-t * t / 2) / np.sqrt(2 * np.pi), 0.8413447460685429
    assert truncated(z, t).var() == pytest.approx(1 - 2 * t * phi / (2 * big_phi - 1), rel=0.03)
    np.testing.assert_allclose(truncated(z[:100], 30.0), z[:100], atol=1e-9)  # t -> inf: z


def test_a_truncated_export_samples_truncated_z_everywhere(registry, tmp_path):
    from augment.export import export_onnx
    from augment.latent_codes import truncated

    variant = registry.create("cgan", {"latent_dim": 8, "width": 16}, SPEC, seed=0)
    plain, cut = tmp_path / "plain.onnx", tmp_path / "cut.onnx"
    export_onnx(variant, variant.generator.eval(), plain)
    export_onnx(variant, variant.generator.eval(), cut, truncation=0.5)
    model = OnnxGenerator(cut, task="synthesize")
    assert model.truncation == 0.5 and OnnxGenerator(plain).truncation is None
    z = model.latent_stream(seed=4, count=6).next(6)["z"]
    free = OnnxGenerator(plain).latent_stream(seed=4, count=6).next(6)["z"]
    np.testing.assert_allclose(z, truncated(free.astype(np.float64), 0.5), atol=1e-6)
    assert not np.array_equal(
        model.generate([0, 1], seed=4), OnnxGenerator(plain).generate([0, 1], seed=4)
    )
    upscaler = registry.create("srresnet", {}, DataSpec(16, 1), seed=0)
    with pytest.raises(ExportError, match="truncation 0.5 applies to a synthesize model"):
        export_onnx(upscaler, upscaler.generator, tmp_path / "sr.onnx", truncation=0.5)
    assert not (tmp_path / "sr.onnx").exists()


def test_bad_truncation_settings_are_one_line_errors(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("variants: [biggan]\nexport: {truncation: {bigan: 1.0}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.export", "biggan", "--params", str(params)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: params.yaml export.truncation.bigan: not one of variants (biggan)"
    ]
