"""Acting in real environments: collecting training episodes and evaluating the policy.

The collector's envs, their current frames and the episodes in progress persist across epochs and go into the
checkpoint, so a resumed run continues exactly where it stopped. As in the official code, each collection starts
the policy's LSTM afresh and burns it in, with the current weights, on the last frames of each episode in progress.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from iris.agent import Agent
from iris.config import EnvConfig
from iris.envs import make_vector_env, set_vector_state, vector_state
from iris.episodes import Episode


class EpisodeBuffer:
    """The steps of one episode in progress; evaluation keeps no frames (a test episode can be 27k steps)."""

    def __init__(self, keep_frames: bool = True):
        self.keep_frames = keep_frames
        self.observations, self.actions, self.rewards, self.ends = [], [], [], []
        self.truncated = False

    def add(self, obs: np.ndarray, action: int, reward: float, end: bool) -> None:
        if self.keep_frames:
            self.observations.append(obs)
        self.actions.append(action)
        self.rewards.append(reward)
        self.ends.append(end)

    def to_episode(self) -> Episode:
        return Episode(
            observations=np.stack(self.observations),
            actions=np.asarray(self.actions, dtype=np.int64),
            rewards=np.asarray(self.rewards, dtype=np.float32),
            ends=np.asarray(self.ends, dtype=bool),
            truncated=self.truncated,
        )


def run_policy(agent: Agent, vec, obs: np.ndarray, state, buffers: list[EpisodeBuffer], steps: int,
               temperature: float, epsilon: float, device: torch.device, progress: str | None = None,
               time_limit_is_end: bool = True):
    """Step every env `steps` times with the policy. Returns ([(env index, finished buffer)], obs, LSTM state).
    A step's end flag is its termination, or its time-limit cut too where time_limit_is_end."""
    finished: list[tuple[int, EpisodeBuffer]] = []
    for _ in tqdm(range(steps), desc=progress, leave=False, disable=True if progress is None else None):
        actions, state = agent.act(torch.from_numpy(obs).to(device), state, temperature, epsilon)
        actions = actions.cpu().numpy()
        next_obs, rewards, terminated, truncated, _ = vec.step(actions)
        for i, buf in enumerate(buffers):
            buf.add(obs[i], int(actions[i]), float(rewards[i]), bool(terminated[i] or (truncated[i] and time_limit_is_end)))
            if terminated[i] or truncated[i]:
                buf.truncated = bool(truncated[i] and not terminated[i])
                finished.append((i, buf))
                buffers[i] = EpisodeBuffer(buf.keep_frames)
        done = torch.from_numpy(terminated | truncated).to(device)[:, None]
        state = tuple(torch.where(done, 0.0, s) for s in state)  # a new episode starts from a blank memory
        obs = next_obs
    return finished, obs, state


class Collector:
    def __init__(self, cfg: EnvConfig, num_envs: int, seed: int, device: torch.device, time_limit_is_end: bool = True):
        self.vec = make_vector_env(cfg, train=True, seed=seed, num_envs=num_envs)
        self.obs, _ = self.vec.reset()
        self.device, self.time_limit_is_end = device, time_limit_is_end
        self.buffers = [EpisodeBuffer() for _ in range(num_envs)]

    def collect(self, agent: Agent, steps: int, temperature: float, epsilon: float, burn_in: int) -> list[Episode]:
        """`steps` env steps in all (spread over the envs); returns the episodes that finished."""
        per_env = -(-steps // self.vec.num_envs)
        finished, self.obs, _ = run_policy(
            agent, self.vec, self.obs, self.burnt_in_state(agent, burn_in), self.buffers, per_env, temperature, epsilon,
            self.device, "collect", self.time_limit_is_end,
        )
        return [buf.to_episode() for _, buf in finished]

    @torch.no_grad()
    def burnt_in_state(self, agent: Agent, burn_in: int):
        """A blank LSTM that has read the reconstructions of the last `burn_in` frames of each episode in progress
        (rows of envs that just reset stay blank)."""
        n = self.vec.num_envs
        frames = np.zeros((n, burn_in, *self.obs.shape[1:]), np.uint8)
        mask = np.zeros((n, burn_in), bool)
        for i, buf in enumerate(self.buffers):
            last = buf.observations[-burn_in:] if burn_in else []
            if last:
                frames[i, burn_in - len(last):] = np.stack(last)
                mask[i, burn_in - len(last):] = True
        if not mask.any():
            return agent.actor_critic.initial_state(n)
        frames, mask = torch.from_numpy(frames).to(self.device), torch.from_numpy(mask).to(self.device)
        seen = agent.tokenizer.detokenize(agent.tokenizer.tokenize(frames, mask), mask)
        return agent.actor_critic.burn_in(seen, mask)

    def in_progress(self) -> list[Episode]:
        return [buf.to_episode() for buf in self.buffers if buf.actions]

    def state_dict(self) -> dict:
        return {"envs": vector_state(self.vec), "obs": self.obs, "buffers": self.buffers}

    def load_state_dict(self, saved: dict) -> None:
        set_vector_state(self.vec, saved["envs"])
        self.obs, self.buffers = saved["obs"], saved["buffers"]


@torch.no_grad()
def evaluate(agent: Agent, cfg: EnvConfig, episodes: int, temperature: float, seed: int, device: torch.device,
             max_envs: int = 32) -> tuple[list[float], list[int]]:
    """Returns and lengths of `episodes` test episodes. Each env plays a fixed quota of episodes, so short
    episodes are not over-represented; envs that met their quota keep stepping but are not counted. The envs and
    the actions draw from `seed` alone: an evaluation is the same whatever ran before it, and leaves the caller's
    random stream (a training run's) as it found it, so how often a run evaluates does not change what it learns."""
    num_envs = min(episodes, max_envs)
    quota = [episodes // num_envs + (i < episodes % num_envs) for i in range(num_envs)]
    vec = make_vector_env(cfg, train=False, seed=seed, num_envs=num_envs)
    obs, _ = vec.reset()
    state = agent.actor_critic.initial_state(num_envs)
    buffers = [EpisodeBuffer(keep_frames=False) for _ in range(num_envs)]
    results: list[list[EpisodeBuffer]] = [[] for _ in range(num_envs)]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
            tqdm(total=episodes, desc="evaluate", leave=False, disable=None) as bar:
        torch.manual_seed(seed)
        while any(len(r) < q for r, q in zip(results, quota)):
            finished, obs, state = run_policy(agent, vec, obs, state, buffers, 1, temperature, 0.0, device)
            for i, buf in finished:
                if len(results[i]) < quota[i]:
                    results[i].append(buf)
                    bar.update()
    vec.close()
    done = [e for r in results for e in r]
    return [float(sum(b.rewards)) for b in done], [len(b.actions) for b in done]
