"""Batched rollouts inside the world model, the only place the actor-critic learns from.

Burn-in: the actor-critic's LSTM reads the reconstructions of real frames. Then, from the last real frame,
the policy acts and the world model answers with the reward, the end flag and the next frame, token by
token, using its key-value cache. Everything is sampled on the device: no host sync inside the rollout.
"""

from __future__ import annotations

import torch
from torch.distributions import Categorical

from iris.actor_critic import ActorCritic
from iris.tokenizer import Tokenizer
from iris.world_model import Context, WorldModel


def sample(logits: torch.Tensor, greedy: bool) -> torch.Tensor:
    return logits.argmax(-1) if greedy else Categorical(logits=logits.float()).sample()


@torch.no_grad()
def start_frame(world_model: WorldModel, tokens: torch.Tensor, use_cache: bool = True) -> Context:
    """A fresh context holding one frame's tokens [B, K]."""
    context = Context(world_model, tokens.shape[0], use_cache)
    context.feed(world_model.frame_embed(tokens))
    return context


@torch.no_grad()
def dream_step(world_model: WorldModel, context: Context, tokens: torch.Tensor, actions: torch.Tensor, greedy: bool = False):
    """One imagined step after frame `tokens` [B, K] under `actions` [B] -> (next tokens, rewards, ends, context).

    1 + K passes: the action, then each new frame token fed back; a full context restarts from the current
    frame alone (absolute positions cannot slide)."""
    k = world_model.tokens_per_frame
    if context.length + k + 1 > world_model.max_tokens:
        context = start_frame(world_model, tokens, context.cache is not None)
    h = context.feed(world_model.action_embed(actions)[:, None])
    rewards = sample(world_model.head_reward(h), greedy).float() - 1.0
    ends = sample(world_model.head_end(h), greedy).bool()
    new_tokens = []
    for _ in range(k):
        token = sample(world_model.head_frame(h), greedy)
        new_tokens.append(token)
        h = context.feed(world_model.frame_embed(token)[:, None])
    return torch.stack(new_tokens, dim=1), rewards, ends, context


def imagine(
    actor_critic: ActorCritic,
    world_model: WorldModel,
    tokenizer: Tokenizer,
    frames: torch.Tensor,
    mask: torch.Tensor,
    horizon: int,
    greedy: bool = False,
    use_cache: bool = True,
) -> dict[str, torch.Tensor]:
    """frames uint8 [B, L, H, W, 3] of real segments (mask [B, L], the last frame real) -> trajectory of
    `horizon` steps: logits [B, H, A] and values [B, H] with gradients, actions, rewards, ends [B, H]."""
    tokens = tokenizer.tokenize(frames, mask)  # [B, L, K]
    real = tokenizer.detokenize(tokens[mask])  # the agent only ever sees reconstructions
    seen = real.new_zeros(*mask.shape, *real.shape[1:])
    seen[mask] = real
    state = actor_critic.burn_in(seen[:, :-1], mask[:, :-1])
    tokens, obs = tokens[:, -1], seen[:, -1]
    context = start_frame(world_model, tokens, use_cache)
    out = {key: [] for key in ("logits", "values", "actions", "rewards", "ends")}
    for t in range(horizon):
        logits, values, state = actor_critic(obs, state)
        actions = sample(logits.detach(), greedy)
        tokens, rewards, ends, context = dream_step(world_model, context, tokens, actions, greedy)
        if t < horizon - 1:  # the frame after the last action is never looked at
            obs = tokenizer.detokenize(tokens)
        for key, value in zip(out, (logits, values, actions, rewards, ends)):
            out[key].append(value)
    return {key: torch.stack(values, dim=1) for key, values in out.items()}
