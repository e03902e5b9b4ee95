"""The classical long-tail fixes against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from augment.classifier import ClassifierConfig, extract_features, train_classifier
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
