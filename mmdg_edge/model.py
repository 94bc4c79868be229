"""MMDG++ (METHOD.md §1–§3): a frozen CLIP ViT with three token streams and U-Adapter++.

The three modalities share every frozen weight, so they run through each block as ONE batch of
3B images (modality-major); each modality owns its class token, positional embedding, output
projection, its U-Adapter++ in every block and its domain prompts. The head fuses the three
L2-normalised features. A per-sample mask says which modalities are present.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .adapters import UAdapter
from .errors import CheckpointError, require
from .frames import CROP_SIZE, MODALITIES
from .prompts import DomainPrompts

logger = logging.getLogger(__name__)

_PARTNERS = ((1, 2), (0, 2), (0, 1))
NUM_CLASSES = 2  # index 1 = live


# Fields added after checkpoints were first written, with the value that reproduces those checkpoints.
_LEGACY_DEFAULTS = {"quick_gelu": None}


@dataclass(frozen=True)
class MMDGConfig:
    """Architecture of MMDG++; its dict form travels in every checkpoint.

    ``clip_model`` names an open_clip architecture; ``clip_overrides`` (open_clip format:
    embed_dim / vision_cfg / text_cfg) are applied last by open_clip's ``create_model``.
    ``pretrained`` is None (random init), "openai" or a local weights file, as in open_clip.
    ``quick_gelu``: the MLP activation of the CLIP towers. OpenAI's CLIP was trained with
    QuickGELU, but open_clip only infers that from the tag "openai", not from a local copy of
    those weights; None keeps that inference (checkpoints written before this field load so).
    """

    clip_model: str = "ViT-B-16"
    pretrained: Optional[str] = None
    clip_overrides: Dict[str, Any] = field(default_factory=dict)
    adapter_dim: int = 8
    adapter_heads: int = 8
    certainty_rate: float = 2.5
    num_samples: int = 50
    cdc_theta: float = 0.5
    prompt_slots: int = 5
    prompt_length: int = 5
    live_slot: int = 1
    train_backbone: bool = False
    quick_gelu: Optional[bool] = None

    def __post_init__(self) -> None:
        if self.adapter_dim % self.adapter_heads:
            raise ValueError(
                f"MMDGConfig.adapter_dim: {self.adapter_dim} is not divisible by adapter_heads {self.adapter_heads}"
            )
        if self.num_samples < 2:
            raise ValueError(f"MMDGConfig.num_samples: need ≥ 2 draws for a sample variance, got {self.num_samples}")
        if not 0 <= self.live_slot < self.prompt_slots:
            raise ValueError(f"MMDGConfig.live_slot: {self.live_slot} is outside 0..{self.prompt_slots - 1}")

    @classmethod
    def paper(cls, pretrained: Optional[str] = None) -> "MMDGConfig":
        """The paper's setting: OpenAI's CLIP ViT-B/16 (QuickGELU), ``pretrained="openai"`` or a
        local file of those weights."""
        return cls(pretrained=pretrained, quick_gelu=True)

    @classmethod
    def tiny(cls) -> "MMDGConfig":
        """The same architecture shrunk for tests and the demo: 224 input, 14×14 grid, width 64, 2 layers."""
        return cls(
            clip_overrides={
                "embed_dim": 64,
                "vision_cfg": {"image_size": CROP_SIZE, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
                "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
            }
        )

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "MMDGConfig":
        names = {f.name for f in fields(cls)}
        data = {**_LEGACY_DEFAULTS, **data}
        unknown, missing = sorted(set(data) - names), sorted(names - set(data))
        if unknown or missing:
            raise ValueError(f"MMDGConfig.from_dict: unknown keys {unknown}, missing keys {missing}")
        return cls(**data)


@dataclass
class MMDGOutput:
    """Model outputs: ``logits`` (B, 2; index 1 = live), ``features`` (B, 3, E; zero where masked),
    ``certainty`` (B, 3; last block's class-token certainty, zero where masked)."""

    logits: torch.Tensor
    features: torch.Tensor
    certainty: torch.Tensor


class _NoRandomInitNotice(logging.Filter):
    """open_clip warns on the root logger that a model without pretrained weights is random; ours are
    random only until a checkpoint's weights are loaded into them, so the notice only misleads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


def _create_backbone(config: MMDGConfig) -> nn.Module:
    open_clip = require("open_clip", "torch")
    # OpenAI CLIP was trained with QuickGELU; open_clip only knows that from the pretrained tag.
    quick_gelu = config.quick_gelu if config.quick_gelu is not None else config.pretrained == "openai"
    notice = _NoRandomInitNotice()
    root = logging.getLogger()
    root.addFilter(notice)
    try:
        return open_clip.create_model(
            config.clip_model, pretrained=config.pretrained, force_quick_gelu=quick_gelu, **config.clip_overrides
        )
    except Exception as exc:  # open_clip and its hub client raise many types for a failed download or read
        if config.pretrained is None:
            raise
        raise CheckpointError(
            f"cannot load the CLIP weights {config.pretrained!r} ({type(exc).__name__}: {str(exc)[:200]}); "
            "without a network the tag 'openai' cannot be downloaded: pass a local file of those weights instead "
            "(--pretrained /path/to/ViT-B-16.pt or open_clip_pytorch_model.bin)"
        ) from exc
    finally:
        root.removeFilter(notice)


def _check_backbone(backbone: nn.Module) -> None:
    visual = getattr(backbone, "visual", None)
    needed = ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer", "ln_post", "proj")
    missing = [name for name in needed if getattr(visual, name, None) is None]
    if missing or getattr(visual, "attn_pool", None) is not None or getattr(visual, "pool_type", "tok") != "tok":
        raise ValueError(
            "MMDGPlusPlus needs an open_clip CLIP ViT with class-token pooling and an output projection; "
            f"this backbone lacks {missing or 'class-token pooling'}"
        )


class MMDGPlusPlus(nn.Module):
    """MMDG++ with per-sample missing-modality masks (METHOD.md §1–§3).

    Example:
        >>> model = create_model(MMDGConfig.tiny()).eval()
        >>> out = model(torch.zeros(1, 3, 3, 224, 224), torch.tensor([[True, True, False]]))
        >>> out.logits.shape
        torch.Size([1, 2])
    """

    def __init__(self, config: MMDGConfig, backbone: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone if backbone is not None else _create_backbone(config)
        _check_backbone(self.backbone)
        visual = self.backbone.visual
        width = visual.class_embedding.shape[-1]
        embed_dim = visual.proj.shape[1]
        self.grid = visual.grid_size[0]
        if tuple(visual.grid_size) != (self.grid, self.grid) or visual.positional_embedding.shape[0] != self.grid**2 + 1:
            raise ValueError(f"MMDGPlusPlus: expected a square patch grid with a class token, got {visual.grid_size}")

        def per_modality(tensor: torch.Tensor) -> nn.ParameterList:
            return nn.ParameterList([nn.Parameter(tensor.detach().clone()) for _ in MODALITIES])

        self.class_embeddings = per_modality(visual.class_embedding)
        self.positional_embeddings = per_modality(visual.positional_embedding)
        self.projections = per_modality(visual.proj)
        self.adapters = nn.ModuleList(
            nn.ModuleList(
                UAdapter(width, self.grid, config.adapter_dim, config.adapter_heads, config.certainty_rate,
                         config.num_samples, config.cdc_theta)
                for _ in MODALITIES
            )
            for _ in visual.transformer.resblocks
        )
        self.head = nn.Linear(len(MODALITIES) * embed_dim, NUM_CLASSES)
        open_clip = require("open_clip", "torch")
        tokenizer = open_clip.get_tokenizer(config.clip_model)
        self.prompts = DomainPrompts(
            tokenizer, MODALITIES, self.backbone.token_embedding.embedding_dim, config.prompt_slots,
            config.prompt_length, config.live_slot,
        )
        self.backbone.requires_grad_(config.train_backbone)

    def parameter_owners(self) -> Dict[str, Optional[int]]:
        """Trainable parameter name → owning modality index (0 rgb, 1 depth, 2 ir) or None (shared)."""
        owners: Dict[str, Optional[int]] = {}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            parts = name.split(".")
            if parts[0] in ("class_embeddings", "positional_embeddings", "projections"):
                owners[name] = int(parts[1])
            elif parts[0] == "adapters":
                owners[name] = int(parts[2])
            elif parts[:2] == ["prompts", "contexts"]:
                owners[name] = int(parts[2])
            else:
                owners[name] = None
        return owners

    @staticmethod
    def _check_inputs(crops: torch.Tensor, mask: torch.Tensor) -> None:
        expected = (len(MODALITIES), 3, CROP_SIZE, CROP_SIZE)
        if not torch.is_tensor(crops) or crops.ndim != 5 or tuple(crops.shape[1:]) != expected:
            got = tuple(crops.shape) if torch.is_tensor(crops) else type(crops).__name__
            raise ValueError(f"crops: expected a float tensor (B, {', '.join(map(str, expected))}), got {got}")
        if not crops.is_floating_point():
            raise ValueError(f"crops: expected a floating-point tensor, got {crops.dtype}")
        if not torch.is_tensor(mask) or mask.dtype != torch.bool or tuple(mask.shape) != (crops.shape[0], len(MODALITIES)):
            got = (tuple(mask.shape), mask.dtype) if torch.is_tensor(mask) else type(mask).__name__
            raise ValueError(f"mask: expected a bool tensor ({crops.shape[0]}, 3), got {got}")
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling() and not bool(mask.any(dim=1).all()):
            rows = (~mask.any(dim=1)).nonzero().flatten().tolist()
            raise ValueError(f"mask: rows {rows} have no modality present; at least one is needed to score a face")

    def _embed(self, crops: torch.Tensor) -> torch.Tensor:
        """Patch-embed all 3B images at once and add each modality's class token and positions."""
        visual = self.backbone.visual
        batch = crops.shape[0]
        images = crops.transpose(0, 1).reshape(-1, *crops.shape[2:])  # (3B, C, H, W), modality-major
        x = visual.conv1(images).flatten(2).transpose(1, 2)  # (3B, grid², D)
        x = x.view(len(MODALITIES), batch, -1, x.shape[-1])
        cls = torch.stack(list(self.class_embeddings))[:, None, None, :].expand(-1, batch, 1, -1).to(x.dtype)
        pos = torch.stack(list(self.positional_embeddings))[:, None].to(x.dtype)
        x = torch.cat([cls, x], dim=2) + pos  # (3, B, N, D)
        return visual.ln_pre(x.reshape(len(MODALITIES) * batch, -1, x.shape[-1]))

    def forward(self, crops: torch.Tensor, mask: torch.Tensor) -> MMDGOutput:
        """Score a batch of framesets.

        Args:
            crops: (B, 3, 3, 224, 224) float, CLIP-normalised, modality order rgb, depth, ir.
            mask: (B, 3) bool presence mask; a masked modality's pixels have no influence.

        Returns:
            MMDGOutput with logits, features and certainty.

        Raises:
            ValueError: wrong shapes or dtypes, or a row with no modality present.
        """
        self._check_inputs(crops, mask)
        batch, num_modalities = mask.shape
        crops = torch.where(mask[:, :, None, None, None], crops, torch.zeros((), dtype=crops.dtype, device=crops.device))
        x = self._embed(crops)
        present = mask.t()  # (3, B)
        certainty = [crops.new_zeros(batch)] * num_modalities
        for block, adapters in zip(self.backbone.visual.transformer.resblocks, self.adapters):
            x = x + block.ls_1(block.attention(q_x=block.ln_1(x)))
            h = block.ln_2(x)
            tokens = h.view(num_modalities, batch, *h.shape[1:])
            outputs = []
            for m, adapter in enumerate(adapters):
                partners = list(_PARTNERS[m])
                out, certainty[m] = adapter(tokens[m], tokens[partners], present[m], present[partners])
                outputs.append(out)
            x = x + block.ls_2(block.mlp(h)) + torch.cat(outputs)
        pooled = self.backbone.visual.ln_post(x[:, 0]).view(num_modalities, batch, -1)
        features = torch.einsum("mbd,mde->bme", pooled, torch.stack(list(self.projections)))
        features = torch.where(mask[..., None], F.normalize(features, dim=-1), torch.zeros((), dtype=features.dtype, device=features.device))
        logits = self.head(features.flatten(1))
        return MMDGOutput(logits=logits, features=features, certainty=torch.stack(certainty, dim=1))

    def live_prob(self, crops: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Live probability (B,) = softmax(logits)[:, 1]."""
        return self(crops, mask).logits.softmax(dim=-1)[:, 1]

    def logit_scale(self) -> torch.Tensor:
        """CLIP's temperature, exp(logit_scale)."""
        return self.backbone.logit_scale.exp()

    def text_features(self) -> torch.Tensor:
        """ADP text features (M, S, E), L2-normalised (METHOD.md §3); training only.

        Each slot's feature is the mean over its sentences of the frozen text tower's pooled,
        projected output with the placeholder tokens replaced by that slot's context vectors.
        """
        clip = self.backbone
        tokens = self.prompts.tokens  # (M, S, n, T)
        embeddings = self.prompts.context_embeddings(clip.token_embedding(tokens))
        flat = embeddings.reshape(-1, *embeddings.shape[-2:])  # (M·S·n, T, W)
        length = flat.shape[1]
        x = flat + clip.positional_embedding[:length].to(flat.dtype)
        x = clip.transformer(x, attn_mask=clip.attn_mask[:length, :length])
        x = clip.ln_final(x)
        pooled = x[torch.arange(x.shape[0], device=x.device), self.prompts.eot.flatten()]
        projected = clip.text_projection(pooled) if isinstance(clip.text_projection, nn.Linear) else pooled @ clip.text_projection
        sentences = F.normalize(projected, dim=-1).view(*tokens.shape[:3], -1)
        return F.normalize(sentences.mean(dim=2), dim=-1)


def create_model(config: Optional[MMDGConfig] = None) -> MMDGPlusPlus:
    """Build MMDG++ from a config (default: the paper's ViT-B/16, random init).

    Args:
        config: an MMDGConfig; ``MMDGConfig.paper("openai")`` loads CLIP weights through open_clip.

    Returns:
        The model in training mode with the backbone frozen (unless ``config.train_backbone``).

    Raises:
        MissingDependency: torch or open_clip is not installed.

    Example:
        >>> model = create_model(MMDGConfig.tiny())
    """
    return MMDGPlusPlus(config if config is not None else MMDGConfig.paper())
