"""The world model: a GPT over interleaved frame tokens and actions.

A step is a block of K frame tokens followed by 1 action token. Each position predicts the token after it:
positions before a frame token predict that token (the next frame is generated token by token), and each
action position also predicts the reward's sign and whether the episode ends.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from iris.config import WorldModelConfig


class KVCache:
    """Preallocated keys and values for every layer; growing with torch.cat cost about twice as much.

    Dynamic (default): attention reads only the filled part. Static: attention reads the whole buffer under a
    mask and the write position lives on the device, so every pass of n tokens has the same shapes and asks the
    host nothing: what capturing an imagined step as a CUDA graph needs (iris/imagination.py)."""

    def __init__(self, num_layers: int, batch: int, heads: int, max_tokens: int, head_dim: int, device, dtype,
                 static: bool = False):
        self.kv = torch.zeros(num_layers, 2, batch, heads, max_tokens, head_dim, device=device, dtype=dtype)
        self.static = static
        # Row i: the additive attention mask of the token at position i (0 on the keys up to i, -inf after), in the
        # keys' precision, as scaled_dot_product_attention would make it from a boolean mask in every layer.
        causal = torch.ones(max_tokens, max_tokens, dtype=torch.bool, device=device).triu(diagonal=1)
        self.masks = torch.zeros(max_tokens, max_tokens, dtype=dtype, device=device).masked_fill_(causal, float("-inf"))
        self.offsets = torch.arange(max_tokens, device=device)
        self.length = 0  # tokens held, counted on the host
        self.position = torch.zeros((), dtype=torch.long, device=device)  # the same count on the device (static)

    def reset(self) -> None:
        self.length = 0
        self.position.zero_()

    def begin(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Positions [n] of the next n tokens and their additive attention mask [n, keys] (None: every key)."""
        if self.static:  # every key of the buffer, the unwritten ones masked
            positions = self.position + self.offsets[:n]
            return positions, self.masks[positions]
        end = self.length + n
        # one new token sees everything before it; a chunk, the cache and itself up to each token
        return self.offsets[self.length:end], None if n == 1 else self.masks[self.length:end, :end]

    def append(self, layer: int, kv: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Store the new keys and values [2, B, heads, n, head_dim] at `positions`; -> all those to attend to."""
        if self.static:
            return self.kv[layer].index_copy_(3, positions, kv)
        end = self.length + kv.shape[3]
        self.kv[layer, :, :, :, self.length:end] = kv
        return self.kv[layer, :, :, :, :end]

    def advance(self, n: int) -> None:
        self.length += n
        if self.static:
            self.position += n


class Context:
    """What the world model has seen of one batch of imagined trajectories. With the key-value cache each
    pass runs only the new tokens; without it (the reference mode) every pass re-runs the whole sequence."""

    def __init__(self, world_model: "WorldModel", batch: int, use_cache: bool = True, static: bool = False):
        self.world_model = world_model
        self.cache = world_model.new_cache(batch, static) if use_cache else None
        self.sequence: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return self.cache.length if self.cache is not None else (0 if self.sequence is None else self.sequence.shape[1])

    def reset(self) -> None:
        if self.cache is not None:
            self.cache.reset()
        self.sequence = None

    def feed(self, x: torch.Tensor) -> torch.Tensor:
        """Embedded tokens [B, N, D] -> the last position's hidden state [B, D]."""
        if self.cache is not None:
            return self.world_model(x, self.cache)[:, -1]
        self.sequence = x if self.sequence is None else torch.cat([self.sequence, x], dim=1)
        return self.world_model(self.sequence)[:, -1]


class SelfAttention(nn.Module):
    def __init__(self, cfg: WorldModelConfig):
        super().__init__()
        self.heads = cfg.num_heads
        self.qkv = nn.Linear(cfg.embed_dim, 3 * cfg.embed_dim)
        self.proj = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int, positions: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, kv = qkv[0], qkv[1:]  # keys and values together: one cache write
        if cache is not None:
            kv = cache.append(layer, kv, positions)
        y = F.scaled_dot_product_attention(  # without a cache: a whole causal sequence
            q, kv[0], kv[1], attn_mask=mask, is_causal=cache is None, dropout_p=self.dropout if self.training else 0.0
        )
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, n, d)))


class Block(nn.Module):
    def __init__(self, cfg: WorldModelConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.embed_dim), nn.LayerNorm(cfg.embed_dim)
        self.attn = SelfAttention(cfg)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.embed_dim, 4 * cfg.embed_dim), nn.GELU(), nn.Linear(4 * cfg.embed_dim, cfg.embed_dim),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int, positions: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, layer, positions, mask)
        return x + self.mlp(self.ln2(x))


def head(width: int, classes: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, classes))


class WorldModel(nn.Module):
    def __init__(self, cfg: WorldModelConfig, vocab_size: int, num_actions: int, tokens_per_frame: int):
        super().__init__()
        self.cfg = cfg
        self.tokens_per_frame = tokens_per_frame
        self.block_size = tokens_per_frame + 1
        self.max_tokens = cfg.max_blocks * self.block_size
        self.frame_embed = nn.Embedding(vocab_size, cfg.embed_dim)
        self.action_embed = nn.Embedding(num_actions, cfg.embed_dim)
        self.pos_embed = nn.Embedding(self.max_tokens, cfg.embed_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.ln_f = nn.LayerNorm(cfg.embed_dim)
        self.head_frame = head(cfg.embed_dim, vocab_size)
        self.head_reward = head(cfg.embed_dim, 3)  # sign of the reward: -1, 0, +1
        self.head_end = head(cfg.embed_dim, 2)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def new_cache(self, batch: int, static: bool = False) -> KVCache:
        device = self.pos_embed.weight.device
        # Under autocast the keys and values come out in bf16: keep them so, at half the memory traffic.
        dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else torch.float32
        return KVCache(len(self.blocks), batch, self.cfg.num_heads, self.max_tokens,
                       self.cfg.embed_dim // self.cfg.num_heads, device, dtype, static)

    def embed_steps(self, frame_tokens: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """frame tokens [B, T, K], actions [B, T] -> interleaved embeddings [B, T*(K+1), D]."""
        steps = torch.cat([self.frame_embed(frame_tokens), self.action_embed(actions).unsqueeze(2)], dim=2)
        return steps.flatten(1, 2)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Embedded tokens [B, N, D] (continuing `cache` if given) -> final hidden states [B, N, D]."""
        n = x.shape[1]
        positions, mask = cache.begin(n) if cache is not None else (torch.arange(n, device=x.device), None)
        h = self.drop(x + self.pos_embed(positions))
        for i, block in enumerate(self.blocks):
            h = block(h, cache, i, positions, mask)
        if cache is not None:
            cache.advance(n)
        return self.ln_f(h)

    def compute_loss(self, frame_tokens, actions, rewards, ends, mask) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Segments of T steps: frame tokens [B, T, K], actions/rewards/ends/mask [B, T] (mask False on padding)."""
        b, t, k = frame_tokens.shape
        h = self.forward(self.embed_steps(frame_tokens, actions)).view(b, t, k + 1, -1)
        # Frame t's tokens are predicted from the positions just before them: the previous action, then its own tokens.
        before = torch.cat([h[:, :-1, k:], h[:, 1:, : k - 1]], dim=2)  # [B, T-1, K, D]
        frame_logits = self.head_frame(before)
        frame_targets = frame_tokens[:, 1:].masked_fill(~mask[:, 1:, None], -100)
        # Tokens 1..K-1 of the first frame are predictable from its earlier tokens too.
        first_logits = self.head_frame(h[:, 0, : k - 1])
        first_targets = frame_tokens[:, 0, 1:].masked_fill(~mask[:, :1], -100)
        loss_frame = F.cross_entropy(
            torch.cat([frame_logits.flatten(0, 2), first_logits.flatten(0, 1)]),
            torch.cat([frame_targets.flatten(), first_targets.flatten()]),
            ignore_index=-100,
        )
        at_actions = h[:, :, k]
        reward_classes = (torch.sign(rewards).long() + 1).masked_fill(~mask, -100)
        loss_reward = F.cross_entropy(self.head_reward(at_actions).flatten(0, 1), reward_classes.flatten(), ignore_index=-100)
        end_classes = ends.long().masked_fill(~mask, -100)
        loss_end = F.cross_entropy(self.head_end(at_actions).flatten(0, 1), end_classes.flatten(), ignore_index=-100)
        loss = loss_frame + loss_reward + loss_end
        return loss, {"frame": loss_frame.detach(), "reward": loss_reward.detach(), "end": loss_end.detach()}
