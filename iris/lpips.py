"""LPIPS perceptual distance (Zhang et al. 2018) on VGG16 features, for the tokenizer's perceptual loss.

Nothing is downloaded: the weights (VGG16 `features` + LPIPS's learned 1x1 layers) come from one local
file. Make it once on a machine with internet access:

    pip install torch torchvision lpips
    python - <<'PY'
    import torch, torchvision, lpips
    vgg = torchvision.models.vgg16(weights="IMAGENET1K_V1").features.state_dict()
    lin = lpips.LPIPS(net="vgg").state_dict()
    state = {f"features.{k}": v for k, v in vgg.items()}
    state.update({f"lins.{i}.weight": lin[f"lin{i}.model.1.weight"] for i in range(5)})
    torch.save(state, "lpips_vgg16.pt")
    PY

then copy lpips_vgg16.pt to ~/.cache/iris-bench/, or point $IRIS_LPIPS_WEIGHTS or `tokenizer.lpips_weights` at it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from iris.errors import ConfigError

VGG16_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
TAPS = (3, 8, 15, 22, 29)  # indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in VGG16 `features`
TAP_CHANNELS = (64, 128, 256, 512, 512)
DEFAULT_PATH = Path("~/.cache/iris-bench/lpips_vgg16.pt")


def weights_path(configured: str) -> Path:
    return Path(configured or os.environ.get("IRIS_LPIPS_WEIGHTS") or DEFAULT_PATH).expanduser()


class LPIPS(nn.Module):
    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in VGG16_LAYOUT:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        self.features = nn.Sequential(*layers)
        self.lins = nn.ModuleList(nn.Conv2d(ch, 1, 1, bias=False) for ch in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        h = (x - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in TAPS:
                out.append(F.normalize(h, dim=1, eps=1e-10))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor, dropout: bool = False) -> torch.Tensor:
        """x, y float [B, 3, H, W] in [-1, 1] -> distance [B]. dropout: Dropout(0.5) before each learned 1x1 layer,
        as LPIPS's own layers have it and the official IRIS trainer leaves it on in every tokenizer update (its
        agent.train() reaches them); the perceptual term of the published training is that noisy one."""
        return sum(lin(F.dropout((a - b).pow(2), 0.5, dropout)).mean(dim=(1, 2, 3))
                   for lin, a, b in zip(self.lins, self.taps(x), self.taps(y)))


def load_lpips(configured_path: str = "") -> LPIPS:
    """The frozen perceptual network from its local weights file, or a one-line error saying how to get it."""
    path = require_weights(configured_path)
    net = LPIPS()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval().requires_grad_(False)


def require_weights(configured_path: str = "") -> Path:
    """The weights file's path, or the one-line error saying how to get it."""
    path = weights_path(configured_path)
    if not path.is_file():
        raise ConfigError(
            f"LPIPS weights not found at {path}: make them once as iris/lpips.py's docstring shows and set "
            "tokenizer.lpips_weights or $IRIS_LPIPS_WEIGHTS, or switch the term off with --set tokenizer.perceptual_weight=0"
        )
    return path
