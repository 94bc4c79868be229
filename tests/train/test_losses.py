"""ADP loss targets and masking (METHOD.md §3) against hand computations."""
import math

import pytest
import torch

from mmdg_edge.train.losses import adp_losses, adp_targets, modality_certainty


def test_targets_live_slot_for_live_spoof_slot_per_domain():
    labels = torch.tensor([1, 0, 0, 0, 0, 1])
    domains = torch.tensor([3, 0, 1, 2, 3, 0])
    assert adp_targets(labels, domains, slots=5, live_slot=1).tolist() == [1, 0, 2, 3, 4, 1]
    with pytest.raises(ValueError, match="source-domain indices in 0..3"):
        adp_targets(torch.tensor([0]), torch.tensor([4]), slots=5, live_slot=1)


def test_adp_loss_is_cross_entropy_of_scaled_cosines_over_present_samples():
    text = torch.eye(5)[None].expand(3, 5, 5)  # slot s = basis vector s, for every modality
    features = torch.zeros(2, 3, 5)
    features[0, :, 1] = 1.0  # sample 0 sits on the live slot
    features[1, :, 0] = 1.0  # sample 1 sits on spoof slot 0
    labels, domains = torch.tensor([1, 0]), torch.tensor([0, 1])  # sample 1's target is slot 2
    mask = torch.tensor([[True, True, False], [True, False, False]])
    losses = adp_losses(features, text, torch.tensor(2.0), labels, domains, mask, live_slot=1)
    right = -math.log(math.exp(2) / (math.exp(2) + 4))  # logit 2 on the target, 0 elsewhere
    wrong = -math.log(1 / (math.exp(2) + 4))
    torch.testing.assert_close(losses, torch.tensor([(right + wrong) / 2, right, 0.0]))


def test_modality_certainty_averages_present_samples_only():
    certainty = torch.tensor([[0.2, 0.5, 0.0], [0.4, 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    c = modality_certainty(certainty, mask)
    torch.testing.assert_close(c, torch.tensor([0.3, 0.5, 0.0]))
    assert not c.requires_grad
