"""The three IRIS components together, and the policy that acts in a real environment."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from iris.actor_critic import ActorCritic, State
from iris.config import Config
from iris.envs import num_actions
from iris.tokenizer import Tokenizer
from iris.world_model import WorldModel


RANDOM_POLICY = math.inf  # the temperature of uniformly random actions: the random-policy baseline


class Agent(nn.Module):
    def __init__(self, cfg: Config, n_actions: int):
        super().__init__()
        self.tokenizer = Tokenizer(cfg.tokenizer, cfg.env.size)
        self.world_model = WorldModel(cfg.world_model, cfg.tokenizer.vocab_size, n_actions, self.tokenizer.tokens_per_frame)
        self.actor_critic = ActorCritic(cfg.actor_critic, n_actions, cfg.env.size)

    @torch.no_grad()
    def act(self, frames: torch.Tensor, state: State, temperature: float, epsilon: float = 0.0) -> tuple[torch.Tensor, State]:
        """uint8 frames [N, H, W, 3] -> actions [N] sampled at `temperature` (0: greedy, RANDOM_POLICY: uniformly at
        random), epsilon-greedy."""
        if temperature == RANDOM_POLICY:
            return torch.randint(self.actor_critic.actor.out_features, frames.shape[:1], device=frames.device), state
        logits, _, state = self.actor_critic(self.tokenizer.reconstruct(frames), state)
        if temperature == 0:
            actions = logits.argmax(-1)
        else:
            actions = torch.distributions.Categorical(logits=logits / temperature).sample()
        if epsilon > 0:
            explore = torch.rand(actions.shape, device=actions.device) < epsilon
            actions = torch.where(explore, torch.randint_like(actions, logits.shape[-1]), actions)
        return actions, state


def parameter_counts(cfg: Config) -> dict[str, int]:
    agent = Agent(cfg, num_actions(cfg.env.game))
    counts = {name: sum(p.numel() for p in module.parameters()) for name, module in agent.named_children()}
    counts["total"] = sum(counts.values())
    return counts
