"""MMDG++ model behaviour on the tiny config (same architecture and code path as the paper's)."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from mmdg_edge.model import MMDGConfig, create_model

ALL = torch.tensor([[True, True, True]])
MASKS = [torch.tensor([list(m)]) for m in itertools.product([True, False], repeat=3) if any(m)]


def test_config_round_trips_and_names_bad_keys(tiny_config):
    assert MMDGConfig.from_dict(tiny_config.to_dict()) == tiny_config
    data = tiny_config.to_dict()
    data["surprise"] = 1
    del data["adapter_dim"]
    with pytest.raises(ValueError, match=r"unknown keys \['surprise'\], missing keys \['adapter_dim'\]"):
        MMDGConfig.from_dict(data)


def test_paper_config_names_open_clip_vit_b_16():
    config = MMDGConfig.paper("openai")
    assert (config.clip_model, config.pretrained, config.clip_overrides) == ("ViT-B-16", "openai", {})


def test_features_equal_clip_visual_at_initialisation(tiny_config, random_crops):
    torch.manual_seed(1)
    model = create_model(tiny_config).eval()
    crops = random_crops(2)
    with torch.no_grad():
        out = model(crops, ALL.expand(2, 3))
        for m in range(3):
            expected = F.normalize(model.backbone.visual(crops[:, m]), dim=-1)
            torch.testing.assert_close(out.features[:, m], expected, atol=1e-5, rtol=0)


def test_eval_is_deterministic_and_batch_invariant(tiny_model, random_crops):
    crops = random_crops(4)
    mask = torch.tensor([[True, True, True], [True, False, True], [False, True, False], [True, True, False]])
    with torch.no_grad():
        first, second = tiny_model(crops, mask), tiny_model(crops, mask)
        torch.testing.assert_close(first.logits, second.logits, atol=0, rtol=0)
        for i in range(4):
            alone = tiny_model(crops[i : i + 1], mask[i : i + 1])
            torch.testing.assert_close(alone.logits, first.logits[i : i + 1], atol=1e-5, rtol=0)
            torch.testing.assert_close(alone.features, first.features[i : i + 1], atol=1e-5, rtol=0)


def test_training_mode_samples_queries(tiny_model, random_crops):
    crops = random_crops(1)
    tiny_model.train()
    try:
        torch.manual_seed(0)
        a = tiny_model(crops, ALL).logits
        torch.manual_seed(1)
        b = tiny_model(crops, ALL).logits
    finally:
        tiny_model.eval()
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("mask", MASKS, ids=lambda m: "".join("1" if v else "0" for v in m[0].tolist()))
def test_masked_modality_pixels_have_no_effect(tiny_model, random_crops, mask):
    crops = random_crops(1)
    other = crops.clone()
    other[:, ~mask[0]] = float("nan")  # even NaN pixels in a masked stream change nothing
    with torch.no_grad():
        a, b = tiny_model(crops, mask), tiny_model(other, mask)
    torch.testing.assert_close(a.logits, b.logits, atol=0, rtol=0)
    torch.testing.assert_close(a.certainty, b.certainty, atol=0, rtol=0)
    assert (a.features[0, ~mask[0]] == 0).all() and (a.certainty[0, ~mask[0]] == 0).all()
    assert (a.certainty[0, mask[0]] > 0).all()
    norms = a.features[0, mask[0]].norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


def test_unmasking_a_modality_changes_the_output(tiny_model, random_crops):
    crops = random_crops(1)
    with torch.no_grad():
        without_ir = tiny_model(crops, torch.tensor([[True, True, False]]))
        with_ir = tiny_model(crops, ALL)
    assert not torch.allclose(without_ir.logits, with_ir.logits)
    # the partners' features change too: the adapters now read IR tokens
    assert not torch.allclose(without_ir.features[:, 0], with_ir.features[:, 0])


def test_all_masked_row_raises(tiny_model, random_crops):
    mask = torch.tensor([[True, False, False], [False, False, False]])
    with pytest.raises(ValueError, match=r"rows \[1\] have no modality"):
        tiny_model(random_crops(2), mask)


@pytest.mark.parametrize(
    "crops,mask,message",
    [
        (torch.zeros(1, 3, 3, 112, 112), ALL, "crops: expected"),
        (torch.zeros(1, 3, 3, 224, 224, dtype=torch.int64), ALL, "floating-point"),
        (torch.zeros(1, 3, 3, 224, 224), torch.ones(1, 3), "mask: expected a bool"),
        (torch.zeros(2, 3, 3, 224, 224), ALL, r"mask: expected a bool tensor \(2, 3\)"),
    ],
)
def test_bad_inputs_are_named(tiny_model, crops, mask, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(crops, mask)


def test_parameter_owners_split_by_modality(tiny_model):
    owners = tiny_model.parameter_owners()
    assert owners["head.weight"] is None
    assert owners["class_embeddings.2"] == 2 and owners["projections.0"] == 0
    assert owners["adapters.1.1.up.weight"] == 1
    assert owners["prompts.contexts.0"] == 0
    assert not any(name.startswith("backbone.") for name in owners)  # frozen
    assert all(not p.requires_grad for p in tiny_model.backbone.parameters())


def test_text_features_follow_their_slot_contexts(tiny_config):
    torch.manual_seed(0)
    model = create_model(tiny_config)
    with torch.no_grad():
        before = model.text_features()
        model.prompts.contexts[1][3].add_(torch.randn(5, 64))  # depth, spoof slot of domain index 3
        after = model.text_features()
    assert before.shape == (3, 5, 64)
    torch.testing.assert_close(before.norm(dim=-1), torch.ones(3, 5))
    changed = (before - after).abs().amax(dim=-1) > 1e-6
    expected = torch.zeros(3, 5, dtype=torch.bool)
    expected[1, 3] = True
    assert torch.equal(changed, expected)


def test_text_features_get_gradients_only_into_prompts(tiny_config):
    torch.manual_seed(0)
    model = create_model(tiny_config)
    model.text_features().sum().backward()
    assert all(p.grad is not None for p in model.prompts.contexts)
    assert model.backbone.token_embedding.weight.grad is None


def test_quick_gelu_is_chosen_by_the_config_and_old_configs_keep_their_activation(tiny_config):
    import dataclasses

    from mmdg_edge.model import MMDGConfig, create_model

    assert MMDGConfig.paper("/weights/openai-vit-b-16.bin").quick_gelu is True
    quick = create_model(dataclasses.replace(tiny_config, quick_gelu=True))
    plain = create_model(tiny_config)
    assert type(quick.backbone.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    assert type(plain.backbone.visual.transformer.resblocks[0].mlp.gelu).__name__ == "GELU"
    legacy = {k: v for k, v in tiny_config.to_dict().items() if k != "quick_gelu"}
    assert MMDGConfig.from_dict(legacy).quick_gelu is None
