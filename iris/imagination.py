"""Batched rollouts inside the world model, the only place the actor-critic learns from.

Burn-in: the actor-critic's LSTM reads the reconstructions of real frames. Then, from the last real frame,
the policy acts and the world model answers with the reward, the end flag and the next frame, token by
token, using its key-value cache. Everything is sampled on the device: no host sync inside the rollout.
On CUDA one imagined step (1 + K single-token passes, ~200 kernels each on the paper's model) is captured
once as a CUDA graph and replayed, since launching the kernels one by one costs far more than running them.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from iris.actor_critic import ActorCritic
from iris.tokenizer import Tokenizer
from iris.world_model import Context, WorldModel


def sample(logits: torch.Tensor, greedy: bool = False) -> torch.Tensor:
    """A categorical sample by the Gumbel-max trick: unlike torch.distributions (which checks its arguments on
    the host) it never waits for the device, so it can be captured in a CUDA graph."""
    if greedy:
        return logits.argmax(-1)
    uniform = torch.rand(logits.shape, device=logits.device).clamp_(min=torch.finfo(torch.float32).tiny)
    return (logits.float() - uniform.log().neg().log()).argmax(-1)


def with_linear_weights_in(world_model: WorldModel, dtype: torch.dtype) -> WorldModel:
    """A frozen copy of the world model whose linear layers hold their weights in `dtype`: the very values autocast
    would cast the fp32 weights to at every pass. A captured CUDA graph must redo those casts at each replay (its
    cast cache is off): two thirds of the casts and a quarter of the kernels of an imagined step, paper model."""
    low = copy.deepcopy(world_model).requires_grad_(False)
    for module in low.modules():
        if isinstance(module, nn.Linear):
            module.to(dtype)
    return low


class Dream:
    """A batch of trajectories imagined by the world model: `restart` from a frame's tokens, then `step` with
    actions. Reused across rollouts of the same batch size (its cache is allocated once). Made under autocast, it
    imagines with a copy of the world model whose linear weights are already in the autocast precision, refreshed
    from the trained model at each restart: the same numbers, without casting the weights at every pass."""

    def __init__(self, world_model: WorldModel, batch: int, use_cache: bool = True, greedy: bool = False,
                 static: bool = False):
        self.trained, self.greedy = world_model, greedy
        device = world_model.pos_embed.weight.device.type
        if torch.is_autocast_enabled(device):
            world_model = with_linear_weights_in(world_model, torch.get_autocast_dtype(device))
        self.world_model = world_model
        self.context = Context(world_model, batch, use_cache, static)

    @torch.no_grad()
    def restart(self, tokens: torch.Tensor) -> None:
        """A new rollout from one frame's tokens [B, K]."""
        if self.world_model is not self.trained:  # the weights may have trained since the last rollout
            for mine, trained in zip(self.world_model.parameters(), self.trained.parameters()):
                mine.copy_(trained)
        self.start_from(tokens)

    def start_from(self, tokens: torch.Tensor) -> None:
        """Forget everything; the context holds one frame's tokens [B, K]."""
        self.context.reset()
        self.context.feed(self.world_model.frame_embed(tokens))

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One imagined step after frame `tokens` [B, K] under `actions` [B] -> next tokens [B, K], rewards, ends [B].
        A full context restarts from the current frame alone (absolute positions cannot slide)."""
        if self.context.length + self.world_model.block_size > self.world_model.max_tokens:
            self.start_from(tokens)  # the same rollout: the weights need no refresh
        return self.predict(actions)

    def predict(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """1 + K passes: the action, then each new frame token fed back."""
        wm = self.world_model
        h = self.context.feed(wm.action_embed(actions)[:, None])
        rewards = sample(wm.head_reward(h), self.greedy).float() - 1.0
        ends = sample(wm.head_end(h), self.greedy).bool()
        new_tokens = []
        for _ in range(wm.tokens_per_frame):
            token = sample(wm.head_frame(h), self.greedy)
            new_tokens.append(token)
            h = self.context.feed(wm.frame_embed(token)[:, None])
        return torch.stack(new_tokens, dim=1), rewards, ends


class GraphedDream(Dream):
    """The same rollout with `predict` captured as one CUDA graph on first use (static-shape cache, inputs and
    outputs in fixed buffers). The graph reads the world model's weights in place, so it stays valid while they
    train; build it under the autocast setting it will run in."""

    def __init__(self, world_model: WorldModel, batch: int, greedy: bool = False):
        super().__init__(world_model, batch, use_cache=True, greedy=greedy, static=True)
        self.graph: torch.cuda.CUDAGraph | None = None

    def predict(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.graph is None:
            self.capture(actions)
        self.actions.copy_(actions)
        self.graph.replay()
        self.context.cache.length += self.world_model.block_size  # the replay moved the device-side position
        return tuple(x.clone() for x in self.outputs)

    def capture(self, actions: torch.Tensor) -> None:
        cache, dtype = self.context.cache, torch.get_autocast_dtype("cuda")
        enabled = torch.is_autocast_enabled("cuda")
        self.actions = actions.clone()
        length, position = cache.length, cache.position.clone()
        side = torch.cuda.Stream()  # warm-up on a side stream, as the CUDA graph docs ask
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.autocast("cuda", dtype, enabled=enabled, cache_enabled=False):
            super().predict(self.actions)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # Autocast's cast cache must be off: every cast is recorded in the graph and redone at each replay (the
        # linear weights need none: the Dream holds them in bf16 already).
        with torch.cuda.graph(self.graph), torch.autocast("cuda", dtype, enabled=enabled, cache_enabled=False):
            self.outputs = super().predict(self.actions)
        cache.length = length  # capturing ran no kernels: the step is still to come
        cache.position.copy_(position)


def new_dream(world_model: WorldModel, batch: int, use_cache: bool = True, cuda_graphs: bool = False,
              greedy: bool = False) -> Dream:
    """A GraphedDream where it applies (CUDA, cache on, cuda_graphs asked for), else the eager Dream."""
    if cuda_graphs and use_cache and world_model.pos_embed.weight.device.type == "cuda":
        return GraphedDream(world_model, batch, greedy)
    return Dream(world_model, batch, use_cache, greedy)


def imagine(
    actor_critic: ActorCritic,
    tokenizer: Tokenizer,
    dream: Dream,
    tokens: torch.Tensor,
    seen: torch.Tensor,
    mask: torch.Tensor,
    horizon: int,
) -> dict[str, torch.Tensor]:
    """Real segments: tokens [B, L, K] and what the agent sees of their frames, the reconstructions [B, L, 3, H, W]
    (Tokenizer.detokenize(tokens, mask)), mask [B, L] with the last frame real -> trajectory of `horizon` steps:
    logits [B, H, A] and values [B, H] with gradients, actions, rewards, ends [B, H]."""
    state = actor_critic.burn_in(seen[:, :-1], mask[:, :-1])
    tokens, obs = tokens[:, -1], seen[:, -1]
    dream.restart(tokens)
    out = {key: [] for key in ("logits", "values", "actions", "rewards", "ends")}
    for t in range(horizon):
        logits, values, state = actor_critic(obs, state)
        actions = sample(logits.detach(), dream.greedy)
        tokens, rewards, ends = dream.step(tokens, actions)
        if t < horizon - 1:  # the frame after the last action is never looked at
            obs = tokenizer.detokenize(tokens)
        for key, value in zip(out, (logits, values, actions, rewards, ends)):
            out[key].append(value)
    return {key: torch.stack(values, dim=1) for key, values in out.items()}
