"""How fast a game steps: random actions, resetting at episode ends (`iris-bench envs`)."""

from __future__ import annotations

import time

import gymnasium


def env_steps_per_second(env: gymnasium.Env, steps: int) -> float:
    """Step with random actions, resetting at episode ends; every observation must lie in the observation space."""
    obs, _ = env.reset()
    start = time.perf_counter()
    for _ in range(steps):
        if not env.observation_space.contains(obs):
            raise RuntimeError(f"observation {obs.shape} {obs.dtype} outside {env.observation_space}")
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    return steps / (time.perf_counter() - start)
