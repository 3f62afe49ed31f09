"""Batched rollouts inside the world model, the only place the actor-critic learns from.

Burn-in: the actor-critic's LSTM reads the reconstructions of real frames. Then, from the last real frame,
the policy acts and the world model answers with the reward, the end flag and the next frame, token by
token, using its key-value cache. Everything is sampled on the device: no host sync inside the rollout.
On CUDA one imagined step (K passes of the world model, ~200 kernels each on the paper's model) is captured
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


class ImaginedWorld:
    """A batch of trajectories imagined by the world model: `restart` from a frame's tokens, then `step` with
    actions. Reused across rollouts of the same batch size (its cache is allocated once). Made under autocast, it
    imagines with a copy of the world model whose linear weights are already in the autocast precision, refreshed
    from the trained model at each restart: the same numbers, without casting the weights at every pass."""

    def __init__(self, world_model: WorldModel, batch: int, use_cache: bool = True, greedy: bool = False,
                 static: bool = False):
        self.trained, self.greedy = world_model, greedy
        device = world_model.pos_embed.weight.device
        if torch.is_autocast_enabled(device.type):
            world_model = with_linear_weights_in(world_model, torch.get_autocast_dtype(device.type))
        self.world_model = world_model
        self.context = Context(world_model, batch, use_cache, static)
        # A frame's last token predicts nothing (the action after it is the policy's): it waits, in a fixed buffer
        # (CUDA graphs), to share the pass of that action.
        self.last_token = torch.zeros(batch, dtype=torch.long, device=device)

    @torch.no_grad()
    def restart(self, tokens: torch.Tensor) -> None:
        """A new rollout from one frame's tokens [B, K]."""
        if self.world_model is not self.trained:  # the weights may have trained since the last rollout
            for mine, trained in zip(self.world_model.parameters(), self.trained.parameters()):
                mine.copy_(trained)
        self.start_from(tokens)

    def start_from(self, tokens: torch.Tensor) -> None:
        """Forget everything; the context holds one frame's tokens [B, K], the last one waiting."""
        self.context.reset()
        self.context.feed(self.world_model.frame_embed(tokens[:, :-1]))
        self.last_token.copy_(tokens[:, -1])

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One imagined step after frame `tokens` [B, K] under `actions` [B] -> next tokens [B, K], rewards, ends [B].
        A full context restarts from the current frame alone (absolute positions cannot slide)."""
        if self.context.length + 1 + self.world_model.block_size > self.world_model.max_tokens:  # 1: the last token
            self.start_from(tokens)  # the same rollout: the weights need no refresh
        return self.predict(actions)

    def predict(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """K passes: the last frame's last token with the action, then each new frame token fed back but the last."""
        wm = self.world_model
        h = self.context.feed(torch.stack([wm.frame_embed(self.last_token), wm.action_embed(actions)], dim=1))
        rewards = sample(wm.head_reward(h), self.greedy).float() - 1.0
        ends = sample(wm.head_end(h), self.greedy).bool()
        new_tokens = [sample(wm.head_frame(h), self.greedy)]
        for _ in range(wm.tokens_per_frame - 1):
            h = self.context.feed(wm.frame_embed(new_tokens[-1])[:, None])
            new_tokens.append(sample(wm.head_frame(h), self.greedy))
        self.last_token.copy_(new_tokens[-1])
        return torch.stack(new_tokens, dim=1), rewards, ends


class GraphedImaginedWorld(ImaginedWorld):
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
        length, position, last_token = cache.length, cache.position.clone(), self.last_token.clone()
        side = torch.cuda.Stream()  # warm-up on a side stream, as the CUDA graph docs ask
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.autocast("cuda", dtype, enabled=enabled, cache_enabled=False):
            super().predict(self.actions)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # Autocast's cast cache must be off: every cast is recorded in the graph and redone at each replay (the
        # linear weights need none: the ImaginedWorld holds them in bf16 already).
        with torch.cuda.graph(self.graph), torch.autocast("cuda", dtype, enabled=enabled, cache_enabled=False):
            self.outputs = super().predict(self.actions)
        cache.length = length  # the warm-up moved them, capturing ran no kernels: the step is still to come
        cache.position.copy_(position)
        self.last_token.copy_(last_token)


def new_imagined_world(world_model: WorldModel, batch: int, use_cache: bool = True, cuda_graphs: bool = False,
              greedy: bool = False) -> ImaginedWorld:
    """A GraphedImaginedWorld where it applies (CUDA, cache on, cuda_graphs asked for), else the eager ImaginedWorld."""
    if cuda_graphs and use_cache and world_model.pos_embed.weight.device.type == "cuda":
        return GraphedImaginedWorld(world_model, batch, greedy)
    return ImaginedWorld(world_model, batch, use_cache, greedy)


def imagine(
    actor_critic: ActorCritic,
    tokenizer: Tokenizer,
    dream: ImaginedWorld,
    tokens: torch.Tensor,
    seen: torch.Tensor,
    mask: torch.Tensor,
    horizon: int,
) -> dict[str, torch.Tensor]:
    """Real segments: tokens [B, L, K] and what the agent sees of their frames, the reconstructions [B, L, 3, H, W]
    (Tokenizer.detokenize(tokens, mask)), mask [B, L] with the last frame real -> trajectory of `horizon` states,
    the first real: values [B, H] with gradients, and the H - 1 imagined steps between them: logits [B, H-1, A]
    with gradients, actions, rewards, ends [B, H-1]."""
    state = actor_critic.burn_in(seen[:, :-1], mask[:, :-1])
    tokens, obs = tokens[:, -1], seen[:, -1]
    dream.restart(tokens)
    out = {key: [] for key in ("values", "logits", "actions", "rewards", "ends")}
    for t in range(horizon):
        logits, values, state = actor_critic(obs, state)
        out["values"].append(values)
        if t == horizon - 1:
            break  # the last value only bootstraps the returns: nothing is imagined after it (1/H of the passes)
        actions = sample(logits.detach(), dream.greedy)
        tokens, rewards, ends = dream.step(tokens, actions)
        obs = tokenizer.detokenize(tokens)
        for key, value in zip(("logits", "actions", "rewards", "ends"), (logits, actions, rewards, ends)):
            out[key].append(value)
    return {key: torch.stack(values, dim=1) for key, values in out.items()}
