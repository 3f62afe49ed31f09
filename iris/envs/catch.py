"""Catch: a tiny built-in game to check the whole pipeline on a CPU in minutes.

An 8x8 grid of cells on black. The ball starts in the top row at a random column and falls one row per
step; the paddle (one cell, bottom row, starts in the middle) moves left, stays or moves right. After 7
steps the ball reaches the bottom row and the episode ends: +1 if the paddle is under it, else -1. The
paddle's final column is independent of the ball's uniform column, so a random policy catches 1 in 8:
an expected return of -0.75.
"""

from __future__ import annotations

import gymnasium
import numpy as np

from iris.errors import ConfigError
from iris.config import EnvConfig

GRID = 8
BALL_COLOUR = (255, 220, 0)
PADDLE_COLOUR = (0, 200, 255)
MOVES = (-1, 0, 1)  # left, stay, right
EPISODE_STEPS = GRID - 1  # every episode: the ball falls from the top row to the bottom one


class CatchEnv(gymnasium.Env):
    def __init__(self, cfg: EnvConfig, seed: int):
        if cfg.size % GRID:
            raise ConfigError(f"env.size={cfg.size} does not suit Catch: it must be a multiple of {GRID}")
        self.cell = cfg.size // GRID
        self.np_random = np.random.default_rng(seed)
        self.observation_space = gymnasium.spaces.Box(0, 255, (cfg.size, cfg.size, 3), np.uint8)
        self.action_space = gymnasium.spaces.Discrete(len(MOVES), seed=seed)
        self.ball_row, self.ball_col, self.paddle_col = 0, 0, GRID // 2

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, np.uint8)
        c = self.cell
        obs[(GRID - 1) * c:, self.paddle_col * c:(self.paddle_col + 1) * c] = PADDLE_COLOUR
        obs[self.ball_row * c:(self.ball_row + 1) * c, self.ball_col * c:(self.ball_col + 1) * c] = BALL_COLOUR
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.ball_row, self.ball_col, self.paddle_col = 0, int(self.np_random.integers(GRID)), GRID // 2
        return self._obs(), {}

    def step(self, action: int):
        self.paddle_col = min(max(self.paddle_col + MOVES[action], 0), GRID - 1)
        self.ball_row += 1
        terminated = self.ball_row == GRID - 1
        reward = (1.0 if self.paddle_col == self.ball_col else -1.0) if terminated else 0.0
        return self._obs(), reward, terminated, False, {}

    def get_state(self) -> dict:
        return {
            "np_random": self.np_random.bit_generator.state,
            "ball": (self.ball_row, self.ball_col),
            "paddle_col": self.paddle_col,
        }

    def set_state(self, state: dict) -> None:
        self.np_random.bit_generator.state = state["np_random"]
        (self.ball_row, self.ball_col), self.paddle_col = state["ball"], state["paddle_col"]
