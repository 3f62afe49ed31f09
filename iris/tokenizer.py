"""The discrete autoencoder: a frame becomes a grid of tokens (4x4 = 16 of `vocab_size` codes at 64x64).

Encoder -> nearest code in a learned codebook (straight-through gradient) -> decoder.
Loss: L1 reconstruction (+ optional L2) + codebook term + beta * commitment term + LPIPS perceptual term.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from iris.config import TokenizerConfig
from iris.nets import Decoder, Encoder


def frames_to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [-1, 1]; frames stay uint8 until a model needs them."""
    return frames.movedim(-1, -3).float().div(127.5).sub(1.0)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on `device` without making the host wait: a copy from pageable memory first waits for all the
    work queued on the GPU (the host then idles, and so does the GPU while the host prepares the next step); a
    copy from pinned memory is queued like a kernel."""
    if device.type != "cuda":
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)


def float_to_frames(x: torch.Tensor) -> torch.Tensor:
    """float [..., 3, H, W] in [-1, 1] -> uint8 [..., H, W, 3]."""
    return x.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).movedim(-3, -1)


class Tokenizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig, resolution: int = 64):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg, resolution)
        self.pre_quant = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.codebook = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.codebook.weight.data.uniform_(-1.0 / cfg.vocab_size, 1.0 / cfg.vocab_size)
        self.post_quant = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)
        self.decoder = Decoder(cfg, resolution)
        self.grid = resolution // 2 ** (len(cfg.channel_mult) - 1)
        self.tokens_per_frame = self.grid**2

    def codes(self) -> torch.Tensor:
        w = self.codebook.weight
        return F.normalize(w, dim=-1) if self.cfg.normalize_codes else w

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x float [B, 3, H, W] in [-1, 1] -> (z [B, D, h, w], quantised z [B, D, h, w], tokens [B, h*w])."""
        z = self.pre_quant(self.encoder(x))
        if self.cfg.normalize_codes:
            z = F.normalize(z, dim=1)
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).float()
        codes = self.codes()
        with torch.autocast(z.device.type, enabled=False):  # nearest codes in fp32: bf16 would tie distances
            distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codes.t() + codes.pow(2).sum(1)
        tokens = distances.argmin(dim=1)
        z_q = codes[tokens].reshape(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        return z, z_q, tokens.reshape(z.shape[0], -1)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant(z_q))

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, h*w] -> quantised z [B, D, h, w]."""
        z_q = self.codes()[tokens]
        return z_q.reshape(tokens.shape[0], self.grid, self.grid, -1).permute(0, 3, 1, 2)

    @torch.no_grad()
    def tokenize(self, frames: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 frames [..., H, W, 3] -> tokens [..., h*w]. Frames where `mask` [...] is False (padding before
        an episode's start) are not encoded and get token 0: they are only ever context, never a target."""
        if mask is None:
            mask = torch.ones(frames.shape[:-3], dtype=torch.bool, device=frames.device)
        tokens = torch.zeros(*mask.shape, self.tokens_per_frame, dtype=torch.long, device=frames.device)
        tokens[mask] = self.encode(frames_to_float(frames[mask]))[2]
        return tokens

    @torch.no_grad()
    def detokenize(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """tokens [..., h*w] -> reconstructions float [..., 3, H, W] in [-1, 1]. Where `mask` [...] is False
        (padding) nothing is decoded and the frame is zeros."""
        if mask is not None:
            real = self.detokenize(tokens[mask])
            frames = real.new_zeros(*mask.shape, *real.shape[1:])
            frames[mask] = real
            return frames
        lead = tokens.shape[:-1]
        x = self.decode(self.embed_tokens(tokens.reshape(-1, tokens.shape[-1]))).clamp(-1, 1)
        return x.reshape(*lead, *x.shape[1:])

    @torch.no_grad()
    def reconstruct(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [..., H, W, 3] -> what the agent sees: float [..., 3, H, W] in [-1, 1]."""
        return self.detokenize(self.tokenize(frames))

    def compute_loss(self, frames: torch.Tensor, lpips: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """frames uint8 [B, H, W, 3] -> (total loss, logged terms). `lpips` is the frozen perceptual network
        (iris.lpips.load_lpips), kept outside this module so its weights are neither trained nor saved."""
        x = frames_to_float(frames)
        z, z_q, tokens = self.encode(x)
        x_rec = self.decode(z + (z_q - z).detach())  # straight-through: gradients skip the argmin
        codebook = (z.detach() - z_q).pow(2).mean()
        commitment = (z - z_q.detach()).pow(2).mean()
        l1 = (x - x_rec).abs().mean()
        terms = {"codebook": codebook, "commitment": self.cfg.commitment_weight * commitment, "l1": l1}
        if self.cfg.l2_weight > 0:
            terms["l2"] = self.cfg.l2_weight * (x - x_rec).pow(2).mean()
        if self.cfg.perceptual_weight > 0:
            assert lpips is not None, "perceptual_weight > 0 needs the LPIPS network (iris.lpips.load_lpips)"
            terms["perceptual"] = self.cfg.perceptual_weight * lpips(x, x_rec, dropout=self.training).mean()
        loss = sum(terms.values())
        logged = {k: v.detach() for k, v in terms.items()}
        # (bincount would ask the host for the largest token: a wait for the GPU at every step)
        logged["codes_used"] = tokens.new_zeros(self.cfg.vocab_size, dtype=torch.bool).scatter_(0, tokens.flatten(), True).sum()
        return loss, logged

    @torch.no_grad()
    def reseed_unused_codes(self, frames: torch.Tensor, generator: torch.Generator) -> int:
        """Against codebook collapse: codes no frame of the batch uses take a random encoder output. Returns how many."""
        z, _, tokens = self.encode(frames_to_float(frames))
        unused = torch.ones(self.cfg.vocab_size, dtype=torch.bool, device=z.device)
        unused[tokens.flatten()] = False
        n = int(unused.sum())
        if n:
            flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
            pick = torch.randint(len(flat), (n,), generator=generator, device="cpu").to(z.device)
            self.codebook.weight.data[unused] = flat[pick]
        return n


class TokenCache:
    """The tokenizer's outputs on stored frames, each computed at most once while the tokenizer is fixed: tokens
    for the world-model and actor-critic batches, and reconstructions for the actor-critic's burn-in. Between two
    tokenizer updates (an epoch's world-model and actor-critic phases) the same frames are sampled again and again:
    a paper epoch encodes 512k sampled frames of a store of at most 100k, and decodes 256k. The values are the ones
    tokenize() and detokenize() give. Valid while neither the tokenizer nor the store changes: the trainer makes a
    new one whenever either does, which keeps the rows of the finished episodes (`keep`) if only the store grew,
    and checkpoints it while the tokenizer is frozen. The reconstructions (one frame each, in the decoder's output
    precision: 2.4 GiB in bf16 for the paper's 100k frames) are allocated on the first detokenize().

    Segments come as host tensors (the store's arrays) and what is known is counted on the host, so finding the
    new frames never waits for the GPU, and only those frames travel to it."""

    def __init__(self, tokenizer: Tokenizer, num_steps: int, device: torch.device):
        self.tokenizer, self.device = tokenizer, device
        self.tokens = torch.zeros(num_steps, tokenizer.tokens_per_frame, dtype=torch.long, device=device)
        self.known = torch.zeros(num_steps, dtype=torch.bool)
        self.frames: torch.Tensor | None = None
        self.decoded = torch.zeros(num_steps, dtype=torch.bool)

    def state_dict(self) -> dict:
        """What it knows, as it was computed: the rows round by the batches that filled them (the convolutions')."""
        return {"tokens": self.tokens, "known": self.known, "frames": self.frames, "decoded": self.decoded}

    def load_state_dict(self, state: dict) -> None:
        self.tokens.copy_(state["tokens"])
        self.known.copy_(state["known"])
        self.decoded.copy_(state["decoded"])
        self.frames = None if state["frames"] is None else state["frames"].to(self.device)

    def keep(self, old: "TokenCache", steps: int) -> None:
        """Take what `old` (same tokenizer, unchanged since) knows of the first `steps` store steps."""
        self.tokens[:steps], self.known[:steps] = old.tokens[:steps], old.known[:steps]
        if old.frames is not None:
            self.frames = old.frames.new_empty(len(self.decoded), *old.frames.shape[1:])
            self.frames[:steps], self.decoded[:steps] = old.frames[:steps], old.decoded[:steps]

    def tokenize(self, frames: torch.Tensor, mask: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """As Tokenizer.tokenize(frames, mask), on the device, for host frames [..., H, W, 3] whose store step
        numbers are `index` [...] (host; -1 on padding, where `mask` is False)."""
        index = index.clamp(min=0)  # padding reads row 0 and is zeroed below
        entries, steps = new_steps(mask, index, self.known)
        if len(steps):
            new_frames = to_device(frames.flatten(0, -4)[entries], self.device)
            self.tokens[to_device(steps, self.device)] = self.tokenizer.tokenize(new_frames)
            self.known[steps] = True
        return self.tokens[to_device(index, self.device)] * to_device(mask, self.device)[..., None]

    def detokenize(self, tokens: torch.Tensor, mask: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """As Tokenizer.detokenize(tokens, mask) for the device tokens [..., h*w] of the store steps `index` [...]
        (host, as `mask`)."""
        index = index.clamp(min=0)
        entries, steps = new_steps(mask, index, self.decoded)
        if len(steps):
            frames = self.tokenizer.detokenize(tokens.flatten(0, -2)[to_device(entries, self.device)])
            if self.frames is None:
                self.frames = frames.new_empty(len(self.decoded), *frames.shape[1:])
            self.frames[to_device(steps, self.device)] = frames
            self.decoded[steps] = True
        real = to_device(mask, self.device)[(...,) + (None,) * (self.frames.dim() - 1)]
        return torch.where(real, self.frames[to_device(index, self.device)], 0.0)  # padding rows may hold anything


def new_steps(mask: torch.Tensor, index: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Host tensors: of the real (`mask`) entries of `index` (store steps, padding clamped to 0) whose steps `known`
    lacks, one flat entry position per distinct step (overlapping segments repeat frames: each is computed once),
    and those steps."""
    flat = torch.flatten(index)
    new = torch.flatten(mask & ~known[index]).nonzero().squeeze(1)
    steps, where = torch.unique(flat[new], return_inverse=True)
    first = torch.empty_like(steps).scatter_(0, where, new)
    return first, steps
