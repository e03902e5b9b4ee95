"""The translators' class-consistency judge (augment.tasks.translate): PixelDA's task
classifier, whose loss reaches the generator, and its self-training on the target's
unlabeled images (``pseudo_labels``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from augment.variant import DataSpec

DATA = DataSpec(28, 1, tuple("0123"), domains=("plain", "styled"))
SMALL = {"width": 8, "blocks": 1, "semantic": 1.0}


def images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_the_semantic_loss_reaches_the_translator(registry) -> None:
    """The judge's cross-entropy on a translation trains the generator that made it."""
    cyclegan = registry.create("cyclegan", SMALL, DATA, seed=0)
    source, labels = images(4, 0), torch.tensor([0, 1, 2, 3])
    translated = cyclegan.a_to_b(source)
    out = cyclegan.semantic_loss(translated, labels)
    out.loss.backward()
    grads = [p.grad for p in cyclegan.generator["ab"].parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert out.logs["semantic"] > 0


def test_pseudo_labels_are_the_judges_confident_readings_of_the_target(registry) -> None:
    """From ``pseudo_from`` on, target images the judge reads with p >= t join its loss as
    the class it reads; before, and above every confidence, the loss is that of the labeled
    images and their translations alone."""
    source, target, labels = images(4, 1), images(6, 2), torch.tensor([0, 1, 2, 3])
    translated = images(4, 3)

    def judge_of(threshold: float) -> tuple:
        variant = registry.create(
            "cyclegan", SMALL | {"pseudo_labels": threshold, "pseudo_from": 0.5}, DATA, seed=0
        )
        return variant, variant.discriminator["classifier"].eval()  # per-image outputs

    with torch.no_grad():  # the same seed, the same judge: a threshold inside its readings
        confidence = judge_of(0.5)[1](target).softmax(dim=1).max(dim=1).values.sort().values
    cyclegan, judge = judge_of(float(confidence[2:4].mean()))  # admits the 3 most confident
    with torch.no_grad():
        confidence, reading = judge(target).softmax(dim=1).max(dim=1)
        own = F.cross_entropy(judge(torch.cat([source, translated])), labels.repeat(2))
    admitted = confidence >= cyclegan.params.pseudo_labels
    assert admitted.sum() == 3

    cyclegan.at_step(0, 10)  # 10% of the run: before pseudo_from
    early = cyclegan.classifier_loss(source, labels, translated, unlabeled=target)
    assert "pseudo" not in early.logs
    assert torch.allclose(early.loss, own)

    cyclegan.at_step(5, 10)  # 60% of the run
    late = cyclegan.classifier_loss(source, labels, translated, unlabeled=target)
    expected = F.cross_entropy(
        judge(torch.cat([source, translated, target[admitted]])),
        torch.cat([labels, labels, reading[admitted]]),
    )
    assert torch.allclose(late.loss, expected)
    assert late.logs["pseudo"] == admitted.float().mean().item()


def test_stargan_pseudo_labels_its_unlabeled_domains(registry) -> None:
    """StarGAN's batch mixes the domains: its images with label -1 are the unlabeled ones."""
    params = SMALL | {"pseudo_labels": 1e-6, "pseudo_from": 0.0}
    stargan = registry.create("stargan", params, DATA, seed=0)
    stargan.at_step(0, 10)
    batch, labels = images(6, 4), torch.tensor([0, 1, 2, -1, -1, -1])
    out = stargan.classifier_loss(batch, labels, images(6, 5))
    assert out.logs["pseudo"] == 1.0  # every confidence is above 1e-6: all three admitted
