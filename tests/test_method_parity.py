"""The eval forward of MMDG++ against a reference written from METHOD.md §1–§3 alone.

The reference below is plain tensor maths on the model's state dict: no project module computes
any of it (open_clip only builds the backbone whose weights it reads). Every trainable tensor gets
random non-zero values, up-projections included, so each adapter path shows in the outputs.
"""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from mmdg_edge.model import create_model

MASKS = [mask for mask in itertools.product([True, False], repeat=3) if any(mask)]
PARTNERS = {0: (1, 2), 1: (0, 2), 2: (0, 1)}


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def layer_norm(x, w, prefix):
    return F.layer_norm(x, x.shape[-1:], w[prefix + ".weight"], w[prefix + ".bias"], eps=1e-5)


def vit_attention(x, w, prefix, heads):
    """Multi-head self attention with one packed in-projection (CLIP's nn.MultiheadAttention)."""
    batch, tokens, width = x.shape
    q, k, v = (x @ w[prefix + ".in_proj_weight"].T + w[prefix + ".in_proj_bias"]).split(width, dim=-1)

    def split(t):
        return t.view(batch, tokens, heads, width // heads).transpose(1, 2)

    q, k, v = split(q), split(k), split(v)
    attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(width // heads), dim=-1)
    out = (attention @ v).transpose(1, 2).reshape(batch, tokens, width)
    return out @ w[prefix + ".out_proj.weight"].T + w[prefix + ".out_proj.bias"]


def adapter(x, y, own_present, partner_present, w, p, grid, rate=2.5, theta=0.5, heads=8):
    """METHOD.md §2, eval mode, for own tokens x and partner tokens y: (output, class-token certainty)."""
    kv = layer_norm(quick_gelu(x @ w[p + "down_kv.weight"].T + w[p + "down_kv.bias"]), w, p + "norm_kv")
    qy = layer_norm(quick_gelu(y @ w[p + "down_q.weight"].T + w[p + "down_q.bias"]), w, p + "norm_q")
    qy = torch.where(partner_present[:, None, None], qy, kv)  # a missing partner: its query path reads kv
    q1 = qy @ w[p + "cross.query_partner.weight"].T
    q2 = kv @ w[p + "cross.query_own.weight"].T
    mu1, lam1 = q1 @ w[p + "cross.gauss_partner.mean.weight"].T, q1 @ w[p + "cross.gauss_partner.log_var.weight"].T
    mu2, lam2 = q2 @ w[p + "cross.gauss_own.mean.weight"].T, q2 @ w[p + "cross.gauss_own.log_var.weight"].T
    c1 = torch.exp(-rate * torch.exp(lam1).mean(-1))
    c2 = torch.exp(-rate * torch.exp(lam2).mean(-1))
    partner_wins = c1 > c2
    query = torch.where(partner_wins[..., None], mu1, mu2)
    certainty = torch.where(partner_wins, c1, c2)
    key, value = kv @ w[p + "cross.attend.key.weight"].T, kv @ w[p + "cross.attend.value.weight"].T
    dim = kv.shape[-1]
    outs = []
    for h in range(heads):
        s = slice(h * dim // heads, (h + 1) * dim // heads)
        logits = query[..., s] @ key[..., s].transpose(-1, -2) / math.sqrt(dim // heads) * certainty[..., None]
        outs.append(torch.softmax(logits, dim=-1) @ value[..., s])
    attended = torch.cat(outs, dim=-1) @ w[p + "cross.attend.out.weight"].T + w[p + "cross.attend.out.bias"]
    h = attended + kv
    h = h + layer_norm(h, w, p + "norm_q") @ w[p + "mlp.weight"].T + w[p + "mlp.bias"]
    kernel = w[p + "cdc.conv.weight"]
    summed = kernel.sum(dim=(2, 3))
    patches = h[:, 1:].transpose(1, 2).reshape(h.shape[0], dim, grid, grid)
    patches = F.conv2d(patches, kernel, padding=1) - theta * F.conv2d(patches, summed[:, :, None, None])
    cls = h[:, :1] @ kernel[:, :, 1, 1].T - theta * h[:, :1] @ summed.T  # a 1×1 map sees the centre tap only
    z = quick_gelu(torch.cat([cls, patches.flatten(2).transpose(1, 2)], dim=1))
    out = z @ w[p + "up.weight"].T + w[p + "up.bias"]
    return out * own_present[:, None, None], certainty[:, 0] * own_present


def reference_forward(w, crops, mask, vit_heads, layers, gelu):
    """METHOD.md §1 and §3: three streams through the frozen ViT, adapters after every MLP, fused head."""
    v = "backbone.visual."
    batch, grid = crops.shape[0], crops.shape[-1] // w[v + "conv1.weight"].shape[-1]
    streams = []
    for m in range(3):
        x = F.conv2d(crops[:, m], w[v + "conv1.weight"], stride=w[v + "conv1.weight"].shape[-1])
        x = torch.cat([w[f"class_embeddings.{m}"].expand(batch, 1, -1), x.flatten(2).transpose(1, 2)], dim=1)
        streams.append(layer_norm(x + w[f"positional_embeddings.{m}"], w, v + "ln_pre"))
    certainty = torch.zeros(batch, 3, dtype=crops.dtype)
    for layer in range(layers):
        b = f"{v}transformer.resblocks.{layer}."
        streams = [x + vit_attention(layer_norm(x, w, b + "ln_1"), w, b + "attn", vit_heads) for x in streams]
        normed = [layer_norm(x, w, b + "ln_2") for x in streams]
        updated = []
        for m, x in enumerate(streams):
            mlp = gelu(normed[m] @ w[b + "mlp.c_fc.weight"].T + w[b + "mlp.c_fc.bias"])
            out = x + mlp @ w[b + "mlp.c_proj.weight"].T + w[b + "mlp.c_proj.bias"]
            pieces = [adapter(normed[m], normed[p], mask[:, m], mask[:, p], w, f"adapters.{layer}.{m}.", grid)
                      for p in PARTNERS[m]]
            updated.append(out + sum(piece[0] for piece in pieces))
            certainty[:, m] = sum(piece[1] for piece in pieces) / 2
        streams = updated
    features = [F.normalize(layer_norm(x[:, 0], w, v + "ln_post") @ w[f"projections.{m}"], dim=-1) * mask[:, m, None]
                for m, x in enumerate(streams)]
    logits = torch.cat(features, dim=-1) @ w["head.weight"].T + w["head.bias"]
    return logits, certainty


@pytest.fixture(scope="module")
def randomised(tiny_config):
    torch.manual_seed(7)
    model = create_model(tiny_config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:  # every trainable tensor, up-projections included
                scale = 0.3 if "log_var" in name else 0.5
                param.copy_(torch.randn_like(param) * scale + (1.0 if name.endswith("norm_kv.weight") else 0.0))
    return model


def _reference(model, crops, mask):
    w = {name: t.double() for name, t in model.state_dict().items()}
    visual = model.backbone.visual
    block = visual.transformer.resblocks[0]
    gelu = quick_gelu if "QuickGELU" in type(block.mlp.gelu).__name__ else F.gelu
    return reference_forward(w, crops.double(), mask, block.attn.num_heads, len(visual.transformer.resblocks), gelu)


@pytest.mark.parametrize("masks", [[m] * 3 for m in MASKS] + [[MASKS[0], MASKS[3], MASKS[6]], MASKS[1:4]],
                         ids=["".join("1" if on else "0" for on in m) for m in MASKS] + ["mixed-a", "mixed-b"])
def test_eval_forward_matches_the_method_written_out(randomised, masks):
    crops = torch.randn(3, 3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    mask = torch.tensor(masks)
    with torch.no_grad():
        out = randomised(crops, mask)
    logits, certainty = _reference(randomised, crops * mask[:, :, None, None, None], mask)
    assert certainty.abs().max() > 1e-3 and (certainty[mask] > 0).all()  # the adapters are really at work
    torch.testing.assert_close(out.logits.double(), logits, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.certainty.double(), certainty, atol=1e-4, rtol=0)

