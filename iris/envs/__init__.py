"""Games by name: the 26 Atari 100k games and the built-in Catch, single or in parallel.

Every env has get_state() / set_state(state): a picklable snapshot of everything its future depends
on (emulator incl. RNG, counters, frames, its numpy RNG), so a resumed run continues bit-identically.
Vector envs are seeded at construction: call their reset() without a seed.
"""

from __future__ import annotations

import gymnasium
import numpy as np

from iris.errors import ConfigError
from iris.config import EnvConfig
from iris.envs.atari import AtariEnv, atari_num_actions
from iris.envs.catch import EPISODE_STEPS, MOVES, CatchEnv
from iris.games import check_game

def num_actions(game: str) -> int:
    game = check_game(game)
    return len(MOVES) if game == "Catch" else atari_num_actions(game)


def longest_episode(cfg: EnvConfig) -> int:
    """The most steps a training episode takes: Catch's fixed fall, an Atari game's time limit."""
    return EPISODE_STEPS if check_game(cfg.game) == "Catch" else -(-cfg.train_max_frames // cfg.frame_skip)


def make_env(cfg: EnvConfig, train: bool, seed: int) -> gymnasium.Env:
    game = check_game(cfg.game)
    return CatchEnv(cfg, seed) if game == "Catch" else AtariEnv(game, cfg, train, seed)


def make_vector_env(cfg: EnvConfig, train: bool, seed: int, num_envs: int) -> gymnasium.vector.SyncVectorEnv:
    """num_envs envs stepped in turn. After an episode ends, step() already returns the next episode's
    first observation; the last one is in infos['final_obs'] (SAME_STEP autoreset)."""
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(num_envs)]
    return gymnasium.vector.SyncVectorEnv(
        [lambda s=s: make_env(cfg, train, s) for s in seeds],
        autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP,
    )


def vector_state(vec: gymnasium.vector.SyncVectorEnv) -> list:
    return [env.get_state() for env in vec.envs]


def set_vector_state(vec: gymnasium.vector.SyncVectorEnv, state: list) -> None:
    if len(state) != vec.num_envs:
        raise ConfigError(f"saved state holds {len(state)} envs, this vector env has {vec.num_envs}")
    for env, s in zip(vec.envs, state):
        env.set_state(s)
