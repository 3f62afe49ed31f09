"""Convolutional encoder and decoder of the tokenizer (the VQGAN layout the paper uses): residual blocks,
self-attention at chosen resolutions, a stride-2 convolution down and a nearest-neighbour upsample up."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from iris.config import TokenizerConfig


class GroupNorm(nn.GroupNorm):
    """GroupNorm in its input's precision. Autocast runs it in fp32, and on an H200 the casts of these large
    feature maps to fp32 and back were most of a bf16 tokenizer step; its statistics accumulate in fp32 anyway."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return F.group_norm(x, self.num_groups, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)


def norm(channels: int) -> GroupNorm:
    return GroupNorm(num_groups=min(32, channels), num_channels=channels, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm1, self.conv1 = norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels of a feature map."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = norm(c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1)
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric pad keeps an exact halving


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def mid_block(c: int) -> nn.Sequential:
    return nn.Sequential(ResBlock(c, c), AttnBlock(c), ResBlock(c, c))


class Encoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig, resolution: int):
        super().__init__()
        widths = [cfg.channels * m for m in cfg.channel_mult]
        layers: list[nn.Module] = [nn.Conv2d(3, cfg.channels, 3, padding=1)]
        c, res = cfg.channels, resolution
        for level, width in enumerate(widths):
            for _ in range(cfg.encoder_res_blocks):
                layers.append(ResBlock(c, width))
                c = width
                if res in cfg.attn_resolutions:
                    layers.append(AttnBlock(c))
            if level != len(widths) - 1:
                layers.append(Downsample(c))
                res //= 2
        layers += [mid_block(c), norm(c), nn.SiLU(), nn.Conv2d(c, cfg.z_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig, resolution: int):
        super().__init__()
        widths = [cfg.channels * m for m in cfg.channel_mult]
        c, res = widths[-1], resolution // 2 ** (len(widths) - 1)
        layers: list[nn.Module] = [nn.Conv2d(cfg.z_channels, c, 3, padding=1), mid_block(c)]
        for level in reversed(range(len(widths))):
            for _ in range(cfg.decoder_res_blocks):
                layers.append(ResBlock(c, widths[level]))
                c = widths[level]
                if res in cfg.attn_resolutions:
                    layers.append(AttnBlock(c))
            if level != 0:
                layers.append(Upsample(c))
                res *= 2
        layers += [norm(c), nn.SiLU(), nn.Conv2d(c, 3, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
