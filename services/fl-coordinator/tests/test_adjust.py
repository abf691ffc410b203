"""Client Adaptive Adjustment: class-adaptive thresholds and the credal loss."""

from __future__ import annotations

import torch

from medgate_fl.adjust import AdaptiveThresholds, credal_loss, relaxation


def test_rare_classes_get_a_lower_threshold_and_stay_in() -> None:
    th = AdaptiveThresholds(classes=3, momentum=0.0)
    majority = torch.tensor([[0.95, 0.03, 0.02]]).repeat(90, 1)
    minority = torch.tensor([[0.2, 0.7, 0.1]]).repeat(10, 1)
    th.update(torch.cat([majority, minority]))
    tau = th.thresholds()
    assert tau[1] < 0.5 * tau[0]
    accepted, pseudo = th.select(minority)
    assert accepted.all() and (pseudo == 1).all()  # a fixed 0.95 would drop every one
    assert not (minority.max(dim=1).values >= 0.95).any()


def test_credal_loss_is_zero_inside_the_set_and_kl_outside() -> None:
    logits = torch.log(torch.tensor([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3]]))
    targets = torch.tensor([0, 0])
    alpha = torch.tensor([0.2, 0.2])
    loss = credal_loss(logits, targets, alpha)
    assert loss[0] == 0
    q = torch.tensor([0.8, 0.1, 0.1])  # projection of [0.4, 0.3, 0.3] onto p(0) >= 0.8
    expected = (q * (q.log() - torch.log(torch.tensor([0.4, 0.3, 0.3])))).sum()
    assert torch.isclose(loss[1], expected, atol=1e-5)


def test_credal_loss_gradient_pushes_toward_the_target() -> None:
    logits = torch.zeros(1, 3, requires_grad=True)
    credal_loss(logits, torch.tensor([2]), torch.tensor([0.1])).sum().backward()  # type: ignore[no-untyped-call]
    assert logits.grad is not None and logits.grad[0, 2] < 0


def test_relaxation_is_clipped() -> None:
    assert torch.allclose(relaxation(torch.tensor([1.0, 0.7, 0.0])), torch.tensor([0.05, 0.3, 0.5]))
