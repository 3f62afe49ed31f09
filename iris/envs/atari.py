"""Atari games with the IRIS / Atari 100k protocol, driving the emulator (`ale_py.ALEInterface`) directly.

Per agent step the action is repeated `frame_skip` raw frames; the observation is the pixel-wise max of
the last two raw frames, each first resized to size x size RGB with PIL bilinear (the official IRIS code
resizes every frame, then max-pools). Minimal action set, no sticky actions, rewards not clipped.
A full reset plays 1..train_noop_max random no-op frames (training) or exactly test_noops (evaluation).
In training a lost life ends the episode; the next reset() then continues the same game with one no-op
step (any other reset is a full one). The time limit counts raw frames since the last full reset, no-ops
included.
"""

from __future__ import annotations

import functools
import re

import gymnasium
import numpy as np
from ale_py import Action, ALEInterface, LoggerMode, roms
from PIL import Image

from iris.errors import ConfigError
from iris.config import EnvConfig

ALEInterface.setLoggerMode(LoggerMode.Error)  # no banner on every emulator start

def rom_path(game: str) -> str:
    """ROM file of a game by its usual name: BankHeist -> bank_heist."""
    return str(roms.get_rom_path(re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower()))


def load_emulator(game: str, seed: int) -> ALEInterface:
    ale = ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(rom_path(game))
    return ale


@functools.cache
def atari_num_actions(game: str) -> int:
    return len(load_emulator(game, 0).getMinimalActionSet())


def resize(screen: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(screen).resize((size, size), Image.BILINEAR))


class AtariEnv(gymnasium.Env):
    def __init__(self, game: str, cfg: EnvConfig, train: bool, seed: int):
        if cfg.frame_skip < 1 or cfg.train_noop_max < 0 or cfg.test_noops < 0:
            raise ConfigError(
                f"env.frame_skip must be >= 1 and no-op counts >= 0, got frame_skip={cfg.frame_skip}, "
                f"train_noop_max={cfg.train_noop_max}, test_noops={cfg.test_noops}"
            )
        self.game, self.cfg, self.train = game, cfg, train
        self.max_frames = cfg.train_max_frames if train else cfg.test_max_frames
        self.np_random = np.random.default_rng(seed)  # no-op counts; also seeds the emulator
        self.ale = self._new_emulator()
        self.actions = self.ale.getMinimalActionSet()
        self.noop = self.actions.index(Action.NOOP)
        self.observation_space = gymnasium.spaces.Box(0, 255, (cfg.size, cfg.size, 3), np.uint8)
        self.action_space = gymnasium.spaces.Discrete(len(self.actions), seed=seed)
        self._screen = np.empty((*self.ale.getScreenDims(), 3), np.uint8)
        self.frames = 0  # raw frames since the last full reset
        self.lives = 0
        self._frame = self._prev_frame = np.zeros(self.observation_space.shape, np.uint8)  # last two resized raw frames
        self._continue_game = False  # the last episode ended on a life lost in training, not on game over

    def _new_emulator(self) -> ALEInterface:
        return load_emulator(self.game, int(self.np_random.integers(2**31)))

    def _grab(self) -> None:
        self.ale.getScreenRGB(self._screen)
        self._prev_frame, self._frame = self._frame, resize(self._screen, self.cfg.size)

    def _info(self) -> dict:
        return {"lives": self.lives, "frames": self.frames}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            super().reset(seed=seed)
            self.ale = self._new_emulator()
            self._continue_game = False
        while self._continue_game:  # the game goes on after a life lost; game over or time limit: full reset
            obs, _, terminated, truncated, info = self.step(self.noop)
            if not (terminated or truncated):
                return obs, info
        self._full_reset()
        return self._frame.copy(), self._info()

    def _full_reset(self) -> None:
        self.ale.reset_game()
        self.frames = 0
        if self.train:
            noops = int(self.np_random.integers(1, self.cfg.train_noop_max + 1)) if self.cfg.train_noop_max > 0 else 0
        else:
            noops = self.cfg.test_noops
        for _ in range(noops):
            self.ale.act(self.actions[self.noop])
            self.frames += 1
            if self.ale.game_over():  # as the reference no-op reset does: start over, keep counting no-ops
                self.ale.reset_game()
                self.frames = 0
        self._grab()
        self._prev_frame = self._frame
        self.lives = self.ale.lives()

    def step(self, action: int):
        reward = 0.0
        for i in range(self.cfg.frame_skip):
            reward += self.ale.act(self.actions[action])
            self.frames += 1
            game_over, truncated = self.ale.game_over(), self.frames >= self.max_frames
            if i >= self.cfg.frame_skip - 2 or game_over or truncated:
                self._grab()
            if game_over or truncated:
                break
        obs = np.maximum(self._prev_frame, self._frame)
        life_lost = self.ale.lives() < self.lives
        self.lives = self.ale.lives()
        terminated = game_over or (self.train and life_lost)
        self._continue_game = terminated and not (game_over or truncated)
        return obs, reward, terminated, truncated, self._info()

    def get_state(self) -> dict:
        """Everything the next steps and resets depend on; picklable (ALEState pickles)."""
        return {
            "ale": self.ale.cloneState(include_rng=True),
            "np_random": self.np_random.bit_generator.state,
            "frames": self.frames,
            "lives": self.lives,
            "frame": self._frame.copy(),
            "prev_frame": self._prev_frame.copy(),
            "continue_game": self._continue_game,
        }

    def set_state(self, state: dict) -> None:
        self.ale.restoreState(state["ale"])
        self.np_random.bit_generator.state = state["np_random"]
        self.frames, self.lives = state["frames"], state["lives"]
        self._frame, self._prev_frame = state["frame"].copy(), state["prev_frame"].copy()
        self._continue_game = state["continue_game"]
