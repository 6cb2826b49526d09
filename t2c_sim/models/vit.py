"""Vision transformers written the way PyTorch users write them (after timm's ``vision_transformer``).

- :class:`PatchEmbed`: a conv with ``kernel = stride = patch``, then ``x.flatten(2).transpose(1, 2)``
  to ``[B, tokens, D]``;
- :class:`Attention`: one ``qkv`` linear, ``reshape(B, N, 3, heads, d).permute(2, 0, 3, 1, 4)``,
  ``q, k, v = qkv.unbind(0)``, ``(q @ k.transpose(-2, -1)) * self.scale``, ``softmax(dim=-1)``,
  ``(attn @ v).transpose(1, 2).reshape(B, N, C)``, ``proj``;
- :class:`Mlp`: ``fc1``, ``nn.GELU``, ``fc2``; :class:`Block`: pre-norm residual block
  ``x = x + attn(norm1(x))``, ``x = x + mlp(norm2(x))``;
- :class:`VisionTransformer`: patch embedding, class token (``torch.cat`` of
  ``cls_token.expand(B, -1, -1)`` and the patches), position embedding (``x + self.pos_embed``),
  blocks, final ``nn.LayerNorm``, head on the class token ``x[:, 0]``.

Factories: :func:`vit_digits` (8x8 digits, 2x2 patches: 16 patches and a class token) and
:func:`deit_tiny_block` (one DeiT-tiny encoder block: embedding 192, 3 heads, MLP 768, on
``[B, 197, 192]`` tokens).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PatchEmbed", "Attention", "Mlp", "Block", "VisionTransformer", "vit_digits",
           "deit_tiny_block"]


class PatchEmbed(nn.Module):
    """``[B, C, H, W] -> [B, (H/p)(W/p), D]`` by a conv with kernel = stride = ``p``."""

    def __init__(self, img_size: int = 8, patch_size: int = 2, in_chans: int = 1,
                 embed_dim: int = 32) -> None:
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one ``qkv`` linear (timm's form)."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        return self.proj_drop(x)


class Mlp(nn.Module):
    """``fc1 -> GELU -> fc2`` (with dropouts)."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.act(self.fc1(x)))
        return self.drop2(self.fc2(x))


class Block(nn.Module):
    """Pre-norm encoder block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class VisionTransformer(nn.Module):
    """Patch embedding, class token, position embedding, ``depth`` blocks, norm, head on ``x[:, 0]``."""

    def __init__(self, img_size: int = 8, patch_size: int = 2, in_chans: int = 1,
                 num_classes: int = 10, embed_dim: int = 32, depth: int = 2, num_heads: int = 2,
                 mlp_ratio: float = 2.0, qkv_bias: bool = True, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        cls_token = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls_token, x), dim=1)
        x = self.pos_drop(x + self.pos_embed)
        x = self.blocks(x)
        x = self.norm(x)
        return self.head(x[:, 0])


def _init(m: nn.Module) -> None:
    """timm's initialization: truncated normal (std 0.02) linear weights, zero biases."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def vit_digits(embed_dim: int = 32, depth: int = 2, num_heads: int = 2, mlp_ratio: float = 2.0,
               patch_size: int = 2, num_classes: int = 10) -> VisionTransformer:
    """A small ViT for the 8x8 digits ``[B, 1, 8, 8]``: ``(8 / patch)^2`` patches and a class token."""
    return VisionTransformer(8, patch_size, 1, num_classes, embed_dim, depth, num_heads, mlp_ratio)


def deit_tiny_block(embed_dim: int = 192, num_heads: int = 3, mlp_ratio: float = 4.0) -> Block:
    """One DeiT-tiny encoder block (embedding 192, 3 heads of 64, MLP 768) on ``[B, 197, 192]``
    tokens, with PyTorch's default initialization."""
    return Block(embed_dim, num_heads, mlp_ratio)
