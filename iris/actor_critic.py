"""The policy and value network, trained only in imagination (DreamerV2-style objectives).

A CNN reads the tokenizer's reconstruction of a frame, an LSTM cell carries the past, and two linear heads
give action logits and the state value. Targets are lambda-returns of imagined trajectories.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.distributions import Categorical

from iris.config import ActorCriticConfig

State = tuple[torch.Tensor, torch.Tensor]


class ActorCritic(nn.Module):
    def __init__(self, cfg: ActorCriticConfig, num_actions: int, resolution: int = 64):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in = 3
        for c in cfg.channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.MaxPool2d(2), nn.ReLU()]
            c_in = c
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        features = cfg.channels[-1] * (resolution // 2 ** len(cfg.channels)) ** 2
        self.lstm = nn.LSTMCell(features, cfg.lstm_dim)
        self.actor = nn.Linear(cfg.lstm_dim, num_actions)
        self.critic = nn.Linear(cfg.lstm_dim, 1)

    def initial_state(self, batch: int) -> State:
        z = self.critic.weight.new_zeros(batch, self.cfg.lstm_dim)
        return z, z.clone()

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        """x float [B, 3, H, W] in [-1, 1] -> action logits [B, A], values [B], next LSTM state."""
        if x.device.type == "cpu":  # oneDNN max-pools channels-last maps ~10x faster than NCHW ones
            x = x.contiguous(memory_format=torch.channels_last)
        h, c = self.lstm(self.cnn(x), state)
        return self.actor(h), self.critic(h).squeeze(-1), (h, c)

    @torch.no_grad()
    def burn_in(self, frames: torch.Tensor, mask: torch.Tensor) -> State:
        """Run over frames [B, L, 3, H, W]; rows stay at the zero state on padded steps (mask False)."""
        state = self.initial_state(frames.shape[0])
        for t in range(frames.shape[1]):
            _, _, new = self(frames[:, t], state)
            keep = mask[:, t, None]
            state = (torch.where(keep, new[0], state[0]), torch.where(keep, new[1], state[1]))
        return state

    def compute_loss(self, traj: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """traj (iris.imagination.imagine): values [B, H] of the imagined states, the last only bootstrapping; logits
        [B, H-1, A], actions, rewards, ends [B, H-1] of the steps between them."""
        with torch.no_grad():
            returns = lambda_returns(traj["rewards"], traj["values"], traj["ends"], self.cfg.gamma, self.cfg.lam)
            # 1 up to and including the first imagined end, 0 after it (where the rollout goes on regardless).
            alive = (1.0 - traj["ends"].float()).cumprod(1)
            live = torch.cat([torch.ones_like(alive[:, :1]), alive[:, :-1]], dim=1)
        weight = live if self.cfg.mask_after_end else torch.ones_like(live)
        values = traj["values"][:, :-1]
        dist = Categorical(logits=traj["logits"], validate_args=False)  # checking waits for the GPU

        def mean(x: torch.Tensor) -> torch.Tensor:
            return (weight * x).sum() / weight.sum()

        loss_policy = -mean(dist.log_prob(traj["actions"]) * (returns - values.detach()))
        entropy = mean(dist.entropy())
        loss_value = mean((values - returns).pow(2))
        loss = loss_policy - self.cfg.entropy_weight * entropy + loss_value
        logs = {"policy": loss_policy.detach(), "value": loss_value.detach(), "entropy": entropy.detach(),
                "imagined_return": (live * traj["rewards"]).sum(1).mean(), "lambda_return": returns.mean()}
        return loss, logs


def lambda_returns(rewards: torch.Tensor, values: torch.Tensor, ends: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Rewards and ends [B, T], values [B, T+1] -> G_t = r_t + gamma (1 - end_t) ((1 - lam) v_{t+1} + lam G_{t+1})
    [B, T], with G_T = v_T."""
    returns = torch.empty_like(rewards)
    alive = 1.0 - ends.float()
    later = values[:, -1]
    for t in reversed(range(rewards.shape[1])):
        later = rewards[:, t] + gamma * alive[:, t] * ((1 - lam) * values[:, t + 1] + lam * later)
        returns[:, t] = later
    return returns
