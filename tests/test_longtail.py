"""The classical long-tail fixes against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from augment.classifier import (
    Classifier,
    ClassifierConfig,
    class_counts,
    extract_features,
    train_classifier,
)
from augment.errors import DataError
from augment.longtail import (
    Objective,
    balanced_softmax_loss,
    class_weights_at,
    drw_weights,
    effective_number_weights,
    inverse_frequency_weights,
    logit_adjusted_loss,
    mix_batch,
    objective_loss,
    posthoc_adjusted,
    retrain_head,
)
from augment.nn.split_norm import SplitBatchNorm2d, split_batch_norms, synthetic_rows

LOGITS = torch.tensor([[2.0, 0.5, -1.0]])
COUNTS = torch.tensor([80.0, 15.0, 5.0])  # prior 0.8, 0.15, 0.05


def hand_ce(logits: list[float], y: int) -> float:
    return -logits[y] + math.log(sum(math.exp(v) for v in logits))


def test_logit_adjusted_loss_by_hand() -> None:
    prior = [0.8, 0.15, 0.05]
    for tau in (1.0, 0.5):
        adjusted = [v + tau * math.log(p) for v, p in zip([2.0, 0.5, -1.0], prior, strict=True)]
        for y in range(3):
            got = logit_adjusted_loss(LOGITS, torch.tensor([y]), COUNTS, tau)
            assert float(got) == pytest.approx(hand_ce(adjusted, y), abs=1e-5)
    # the rarest class is penalised more than under plain cross-entropy: its margin must grow
    plain = hand_ce([2.0, 0.5, -1.0], 2)
    assert float(logit_adjusted_loss(LOGITS, torch.tensor([2]), COUNTS)) > plain + 2


def test_balanced_softmax_by_hand_and_equal_to_logit_adjustment_at_tau_1() -> None:
    for y in range(3):
        # -log(n_y e^{f_y} / sum_j n_j e^{f_j})
        numerator = COUNTS[y].item() * math.exp(LOGITS[0, y].item())
        pairs = zip(COUNTS.tolist(), LOGITS[0].tolist(), strict=True)
        denominator = sum(c * math.exp(v) for c, v in pairs)
        expected = -math.log(numerator / denominator)
        got = balanced_softmax_loss(LOGITS, torch.tensor([y]), COUNTS)
        assert float(got) == pytest.approx(expected, abs=1e-5)
        assert float(got) == pytest.approx(
            float(logit_adjusted_loss(LOGITS, torch.tensor([y]), COUNTS, 1.0)), abs=1e-5
        )


def test_posthoc_adjustment_moves_the_decision_to_rare_classes() -> None:
    logits = np.array([[1.0, 0.9, 0.0]])
    adjusted = posthoc_adjusted(logits, np.array([80, 15, 5]), tau=1.0)
    assert adjusted[0].tolist() == pytest.approx(
        [1.0 - math.log(0.8), 0.9 - math.log(0.15), 0.0 - math.log(0.05)], abs=1e-6
    )
    assert logits.argmax() == 0 and adjusted.argmax() == 2
    assert np.array_equal(
        posthoc_adjusted(logits, np.array([80, 15, 5]), tau=0.0), logits.astype(np.float32)
    )


def test_effective_number_and_inverse_frequency_weights() -> None:
    counts = torch.tensor([100.0, 10.0, 0.0])
    beta = 0.99
    raw = [(1 - beta) / (1 - beta**100), (1 - beta) / (1 - beta**10)]
    scale = 2 / sum(raw)
    weights = effective_number_weights(counts, beta)
    assert weights.tolist() == pytest.approx([raw[0] * scale, raw[1] * scale, 0.0], rel=1e-5)
    assert inverse_frequency_weights(counts).tolist() == pytest.approx([110 / 200, 110 / 20, 0])
    # beta -> 1 approaches inverse frequency (normalised the same way)
    near = effective_number_weights(counts, 0.999999)
    inverse = inverse_frequency_weights(counts)
    assert (near / near.sum()).tolist() == pytest.approx((inverse / inverse.sum()).tolist(), 1e-3)


def test_drw_switches_its_weights_on_at_the_start_fraction() -> None:
    counts = torch.tensor([50.0, 5.0])
    total = 10
    schedule = [drw_weights(counts, step, total, start=0.8, beta=0.9) for step in range(total)]
    assert all(w is None for w in schedule[:8])
    assert all(w is not None for w in schedule[8:])
    assert schedule[9].tolist() == pytest.approx(effective_number_weights(counts, 0.9).tolist())
    objective = Objective(class_weights="drw", drw_start=0.5, drw_beta=0.9)
    assert class_weights_at(objective, counts, 4, total) is None
    assert class_weights_at(objective, counts, 5, total) is not None
    assert class_weights_at(Objective(), counts, 9, total) is None


def test_mixup_mixes_images_and_labels() -> None:
    x = torch.arange(4, dtype=torch.float32).reshape(4, 1, 1, 1)
    y = torch.tensor([0, 1, 2, 3])
    rng = torch.Generator().manual_seed(3)
    mixed, (y_a, y_b, lam) = mix_batch(x, y, alpha=1.0, rng=rng)
    assert 0 < lam < 1 and torch.equal(y_a, y)
    # every mixed image is lam * its own image + (1 - lam) * its partner's, labels alike
    partners = y_b  # y == index here, so y_b is the permutation
    assert torch.allclose(mixed.flatten(), lam * x.flatten() + (1 - lam) * x.flatten()[partners])
    # the loss mixes the two targets' losses with the same lam
    logits = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    counts = torch.ones(4)
    loss = objective_loss(Objective(), logits, (y_a, y_b, lam), counts, None, None)
    ce = torch.nn.functional.cross_entropy
    assert float(loss) == pytest.approx(float(lam * ce(logits, y_a) + (1 - lam) * ce(logits, y_b)))
    same, (ya, yb, one) = mix_batch(x, y, alpha=0.0, rng=rng)
    assert same is x and one == 1.0 and torch.equal(ya, yb)


def test_weighted_loss_is_torchs_weighted_mean() -> None:
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    weight = torch.tensor([0.5, 2.0, 4.0])
    loss = objective_loss(Objective(), logits, (y, y, 1.0), torch.ones(3), weight, None)
    expected = torch.nn.functional.cross_entropy(logits, y, weight=weight)
    assert float(loss) == pytest.approx(float(expected), abs=1e-6)
    # a synthetic sample at weight 0 does not count at all
    sample = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    loss = objective_loss(Objective(), logits, (y, y, 1.0), torch.ones(3), None, sample)
    expected = torch.nn.functional.cross_entropy(logits[:3], y[:3])
    assert float(loss) == pytest.approx(float(expected), abs=1e-6)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    images = np.clip(np.rint(data.images * 255 / 16), 0, 255).astype(np.uint8)[..., None]
    return images[:600], data.target[:600].astype(np.int64)


def test_crt_retrains_only_a_copy_of_the_head(digits) -> None:
    images, labels = digits
    model = train_classifier(
        images, labels, 10, ClassifierConfig(width=8, epochs=1), seed=0, progress=False
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    features = extract_features(model, images)
    head = retrain_head(model.head, features, labels, 10, steps=50, seed=0)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the model is untouched
    assert head is not model.head and not torch.equal(head.weight, model.head.weight)
    with torch.no_grad():
        accuracy = (head(torch.as_tensor(features)).argmax(1).numpy() == labels).mean()
    assert accuracy > 0.5
    again = retrain_head(model.head, features, labels, 10, steps=50, seed=0)
    assert torch.equal(again.weight, head.weight)  # same seed, same head


def test_every_objective_trains_a_classifier(digits) -> None:
    images, labels = digits
    keep = np.concatenate([np.flatnonzero(labels == k)[: 60 - 5 * k] for k in range(10)])
    synthetic = np.zeros(len(keep), bool)
    synthetic[::3] = True
    for objective in (
        Objective(loss="balanced-softmax"),
        Objective(class_weights="drw", drw_start=0.5),
        Objective(class_weights="drw", mixup=1.0),
        Objective(synthetic_weight=0.5),
    ):
        model = train_classifier(
            images[keep],
            labels[keep],
            10,
            ClassifierConfig(width=8, flip=True),
            seed=0,
            progress=False,
            steps=30,
            objective=objective,
            synthetic=synthetic,
        )
        assert all(torch.isfinite(p).all() for p in model.parameters())


def test_split_batch_norm_keeps_synthetic_rows_out_of_the_real_statistics() -> None:
    def model_and_norms() -> tuple[Classifier, list[SplitBatchNorm2d]]:
        torch.manual_seed(0)
        model = Classifier(1, 3, width=4, feature_dim=8, split_bn=True).train()
        return model, [m for m in model.modules() if isinstance(m, SplitBatchNorm2d)]

    real, fake = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8) * 5 + 3
    model, norms = model_and_norms()
    with synthetic_rows(model, torch.tensor([False] * 6 + [True] * 6)):
        mixed = model(torch.cat([real, fake]))
    assert all(n.route is None for n in norms)  # the route lasts only inside the block
    alone, alone_norms = model_and_norms()  # the same weights, fed the real rows only
    real_only = alone(real)
    # the synthetic rows reached neither the real statistics nor the real rows' outputs
    for norm, reference in zip(norms, alone_norms, strict=True):
        assert torch.allclose(norm.real.running_mean, reference.real.running_mean)
        assert torch.allclose(norm.real.running_var, reference.real.running_var)
        assert not torch.allclose(norm.synthetic.running_mean, reference.synthetic.running_mean)
    assert torch.allclose(mixed[:6], real_only, atol=1e-6)
    model.eval()  # inference without a route: every row is normalized as real
    with torch.no_grad():
        plain = model(fake)
        with synthetic_rows(model, torch.ones(6, dtype=torch.bool)):
            assert not torch.allclose(model(fake), plain)
    assert model.arch()["split_bn"] is True
    assert "split_bn" not in Classifier(1, 3).arch()  # older checkpoints read as before


def test_split_batch_norm_runs_keep_the_keys_of_runs_without_it(digits) -> None:
    assert "split_bn" not in Objective().to_dict()  # cached runs before split BN stay valid
    assert Objective(split_bn=True).to_dict()["split_bn"] is True
    images, labels = digits
    synthetic = np.zeros(len(labels), bool)
    synthetic[::2] = True
    config = ClassifierConfig(width=8)
    model = train_classifier(
        images, labels, 10, config, seed=0, progress=False, steps=20,
        objective=Objective(split_bn=True), synthetic=synthetic,
    )  # fmt: skip
    norms = [m for m in model.modules() if isinstance(m, SplitBatchNorm2d)]
    assert len(norms) == 3 and all(n.synthetic.num_batches_tracked == 20 for n in norms)
    assert all(n.real.num_batches_tracked == 20 for n in norms)
    with pytest.raises(DataError, match="3 synthetic marks"):
        train_classifier(
            images, labels, 10, config, progress=False, steps=2, synthetic=synthetic[:3]
        )


def test_split_batch_norms_turn_any_network_into_one_with_synthetic_norms() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.Sequential(torch.nn.ReLU(), torch.nn.BatchNorm2d(4, momentum=0.3)),
    )
    x = torch.randn(8, 3, 10, 10)
    net(x)  # move the running statistics off their initial values
    net.eval()
    with torch.no_grad():
        before = net(x)
    split_batch_norms(net)
    norms = [m for m in net.modules() if isinstance(m, SplitBatchNorm2d)]
    assert len(norms) == 2 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in net)
    assert norms[1].real.momentum == norms[1].synthetic.momentum == 0.3
    with torch.no_grad():
        assert torch.equal(net(x), before)  # both halves copy the original norm
        with synthetic_rows(net, torch.ones(8, dtype=torch.bool)):
            assert torch.equal(net(x), before)  # ... until training moves them apart
    net.train()
    with synthetic_rows(net, torch.tensor([True] * 4 + [False] * 4)):
        net(x)
    assert not torch.equal(norms[0].real.running_mean, norms[0].synthetic.running_mean)


def test_class_counts_of_the_real_images_or_of_all() -> None:
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    synthetic = torch.tensor([False, True, False, True, True, False])
    assert class_counts(labels, synthetic, 4, "pool").tolist() == [2, 1, 3, 0]
    assert class_counts(labels, synthetic, 4, "real").tolist() == [1, 1, 1, 0]
    alone = torch.ones(6, dtype=torch.bool)  # synthetic images alone: every image counts
    assert class_counts(labels, alone, 4, "real").tolist() == [2, 1, 3, 0]
    assert "prior" in Objective(loss="balanced-softmax", prior="real").to_dict()
    assert "prior" not in Objective(prior="real").to_dict()  # cross-entropy reads no counts
    assert "prior" not in Objective(class_weights="drw").to_dict()  # the default, pool
    # class weights count every image the batches draw, whatever the prior
    assert "prior" not in Objective(class_weights="drw", prior="real").to_dict()
