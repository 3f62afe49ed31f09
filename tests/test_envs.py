"""The environment protocol on real ALE games and on Catch."""

import pickle

import numpy as np
import pytest
from ale_py import Action, ALEInterface, roms
from PIL import Image

from iris.errors import ConfigError
from iris.config import EnvConfig
from iris.envs import make_env, make_vector_env, num_actions, set_vector_state, vector_state
from iris.games import ATARI_100K, check_game, resolve_games
from iris.envs.catch import BALL_COLOUR, PADDLE_COLOUR

BREAKOUT_FIRE = 1  # minimal action set of Breakout: NOOP, FIRE, RIGHT, LEFT


def env_for(game, train, seed=0, **overrides):
    return make_env(EnvConfig(game=game, **overrides), train=train, seed=seed)


@pytest.mark.parametrize("game, actions", [("Pong", 6), ("Breakout", 4), ("MsPacman", 9), ("Alien", 18), ("Catch", 3)])
def test_spaces_and_observations(game, actions):
    env = env_for(game, train=True)
    assert env.action_space.n == num_actions(game) == actions
    assert env.observation_space.shape == (64, 64, 3) and env.observation_space.dtype == np.uint8
    obs, _ = env.reset()
    for _ in range(10):
        assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and obs.any()
        obs, reward, *_ = env.step(env.action_space.sample())
        assert isinstance(reward, float)


def test_frame_skip_takes_max_of_last_two_resized_frames():
    """The env's observations equal those of an emulator driven by hand: one no-op, then each action 4 times."""
    env = env_for("Pong", train=False)
    ale = ALEInterface()
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(roms.get_rom_path("pong"))
    actions = ale.getMinimalActionSet()

    def screen():
        return np.asarray(Image.fromarray(ale.getScreenRGB()).resize((64, 64), Image.BILINEAR))

    obs, _ = env.reset()
    ale.reset_game()
    ale.act(Action.NOOP)
    assert np.array_equal(obs, screen())
    rng = np.random.default_rng(0)
    max_differs_from_last = 0
    for _ in range(100):
        a = int(rng.integers(len(actions)))
        obs, reward, *_ = env.step(a)
        expected_reward = 0
        for i in range(4):
            expected_reward += ale.act(actions[a])
            if i == 2:
                before_last = screen()
        last = screen()
        assert np.array_equal(obs, np.maximum(before_last, last))
        assert reward == expected_reward
        max_differs_from_last += not np.array_equal(obs, last)
    assert max_differs_from_last > 50  # the ball moves: the max-pool is visible


def test_noop_reset_counts():
    train = env_for("Pong", train=True)
    counts = []
    for _ in range(60):
        _, info = train.reset()  # no step in between: every reset is a full one
        assert info["frames"] == train.ale.getEpisodeFrameNumber()
        counts.append(info["frames"])
    assert 1 <= min(counts) and max(counts) <= 30 and len(set(counts)) >= 15
    test = env_for("Pong", train=False)
    for _ in range(5):
        _, info = test.reset()
        assert info["frames"] == test.ale.getEpisodeFrameNumber() == 1


def play_fire_until_end(env):
    lives_before = env.lives
    for steps in range(1, 10_000):
        obs, reward, terminated, truncated, info = env.step(BREAKOUT_FIRE)
        if terminated or truncated:
            return steps, lives_before, info, terminated
    raise AssertionError("Breakout did not end")


def test_life_loss_ends_episode_only_in_training():
    train = env_for("Breakout", train=True)
    _, info = train.reset()
    assert info["lives"] == 5
    for lives in (4, 3, 2, 1):
        _, _, end_info, terminated = play_fire_until_end(train)
        assert terminated and end_info["lives"] == lives and not train.ale.game_over()
        _, info = train.reset()  # continues the same game: one no-op step (4 frames), same lives
        assert info["frames"] == end_info["frames"] + 4 and info["lives"] == lives
    _, _, end_info, terminated = play_fire_until_end(train)
    assert terminated and end_info["lives"] == 0 and train.ale.game_over()
    _, info = train.reset()
    assert info["lives"] == 5 and 1 <= info["frames"] <= 30  # game over: a full reset

    test = env_for("Breakout", train=False)
    test.reset()
    steps, _, end_info, terminated = play_fire_until_end(test)
    assert terminated and end_info["lives"] == 0 and test.ale.game_over() and steps > 100


@pytest.mark.parametrize("train", [True, False])
def test_time_limit_counts_raw_frames(train):
    limit = 103  # 1 + 4k + 2: with one no-op (test) the last step is cut short
    env = env_for("Pong", train=train, train_max_frames=limit, test_max_frames=limit)
    _, info = env.reset()
    noops = info["frames"]
    for steps in range(1, 100):
        if info["frames"] + 4 >= limit:
            state = env.get_state()  # before the last step, which may max-pool with the frame before it
        obs, _, terminated, truncated, info = env.step(0)
        if truncated:
            break
        assert not terminated and info["frames"] == noops + 4 * steps
    assert truncated and not terminated and info["frames"] == env.ale.getEpisodeFrameNumber() == limit
    assert steps == -(-(limit - noops) // 4)
    restored = env_for("Pong", train=train, seed=1, train_max_frames=limit, test_max_frames=limit)
    restored.reset()
    restored.set_state(state)
    restored_obs, _, _, restored_truncated, restored_info = restored.step(0)
    assert np.array_equal(restored_obs, obs) and restored_truncated and restored_info == info
    _, info = env.reset()
    assert info["frames"] == env.ale.getEpisodeFrameNumber() <= 30


def record(env, actions):
    """Play actions, resetting at episode ends; everything the agent would see."""
    out = []
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            out.append(env.reset())
    return out


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert np.array_equal(x[0], y[0]) and x[1:] == y[1:]


def test_same_seed_same_run_and_state_round_trip():
    actions = np.random.default_rng(1).integers(4, size=400)
    a = env_for("Breakout", train=True, seed=3, train_max_frames=600)  # full resets (random no-ops) happen too
    a.reset()
    head = record(a, actions[:100])
    state = pickle.dumps(a.get_state())
    tail = record(a, actions[100:])
    ends = [r for r in tail if len(r) == 5 and (r[2] or r[3])]
    assert any(r[2] and r[4]["lives"] > 0 for r in ends) and any(r[3] for r in ends)  # life losses and truncations

    again = env_for("Breakout", train=True, seed=3, train_max_frames=600)
    again.reset()
    assert_same(record(again, actions), head + tail)

    restored = env_for("Breakout", train=True, seed=99, train_max_frames=600)
    restored.reset()
    restored.set_state(pickle.loads(state))
    assert_same(record(restored, actions[100:]), tail)


def test_catch_rules():
    env = env_for("Catch", train=True)
    for episode in range(40):
        obs, _ = env.reset()
        ball_col = int(np.flatnonzero((obs[:8] == BALL_COLOUR).all(-1).any(0))[0]) // 8  # the ball is in row 0
        assert (obs[56:] == PADDLE_COLOUR).all(-1).sum() == 64  # one 8x8 paddle cell in the bottom row
        catch = episode % 2 == 0  # follow the ball, or run to the far side
        for step in range(1, 8):
            action = int(np.sign(ball_col - env.paddle_col)) + 1 if catch else (0 if ball_col >= 4 else 2)
            obs, reward, terminated, truncated, _ = env.step(action)
            assert terminated == (step == 7) and not truncated
            assert (obs[(step * 8):(step + 1) * 8] == BALL_COLOUR).all(-1).sum() == 64
            if step < 7:
                assert reward == 0.0
        assert reward == (1.0 if catch else -1.0)


def test_catch_random_policy_scores_minus_three_quarters():
    env = env_for("Catch", train=True, seed=5)
    returns = []
    for _ in range(4000):
        env.reset()
        while True:
            _, reward, terminated, _, _ = env.step(env.action_space.sample())
            if terminated:
                returns.append(reward)
                break
    assert abs(np.mean(returns) + 0.75) < 0.05  # standard error ~0.01


def test_catch_state_round_trip():
    env = env_for("Catch", train=True, seed=0)
    env.reset()
    actions = np.random.default_rng(0).integers(3, size=60)
    record(env, actions[:10])
    state = pickle.dumps(env.get_state())
    tail = record(env, actions[10:])
    restored = env_for("Catch", train=True, seed=1)
    restored.set_state(pickle.loads(state))
    assert_same(record(restored, actions[10:]), tail)


def test_game_names():
    assert resolve_games("all") == ATARI_100K and len(ATARI_100K) == 26
    assert resolve_games(" pong, Catch ,mspacman") == ["Pong", "Catch", "MsPacman"]
    with pytest.raises(ConfigError, match="MsPacman"):
        check_game("MsPackman")
    with pytest.raises(ConfigError, match=r"unknown game 'Pongg'.*Pong"):
        resolve_games("Breakout,Pongg")
    with pytest.raises(ConfigError, match="valid: Alien, .*Catch"):
        check_game("Zzzzzz")
    with pytest.raises(ConfigError, match="frame_skip=0"):
        env_for("Pong", train=True, frame_skip=0)


def test_vector_catch_autoreset():
    vec = make_vector_env(EnvConfig(game="Catch"), train=True, seed=0, num_envs=4)
    obs, _ = vec.reset()
    assert obs.shape == (4, 64, 64, 3) and obs.dtype == np.uint8
    assert len({vec.envs[i].ball_col for i in range(4)}) > 1  # each env has its own seed
    for step in range(7):
        obs, rewards, terminated, truncated, infos = vec.step(np.zeros(4, np.int64))
    assert terminated.all() and not truncated.any() and set(rewards) <= {-1.0, 1.0}
    for i in range(4):
        assert (infos["final_obs"][i][56:] == BALL_COLOUR).all(-1).sum() == 64  # last frame: ball at the bottom
        assert (obs[i][:8] == BALL_COLOUR).all(-1).sum() == 64  # returned frame: the next episode's first


def test_vector_atari_life_loss_continues_and_state_round_trip():
    cfg = EnvConfig(game="Breakout")
    vec = make_vector_env(cfg, train=True, seed=0, num_envs=2)
    _, infos = vec.reset()
    fire = np.full(2, BREAKOUT_FIRE)
    for _ in range(60):
        frames_before = infos["frames"].copy()
        _, _, terminated, _, infos = vec.step(fire)
        if terminated.any():
            break
    i = int(np.flatnonzero(terminated)[0])
    assert infos["final_info"]["lives"][i] == 4
    assert infos["lives"][i] == 4 and infos["frames"][i] == frames_before[i] + 8  # the game went on: one no-op step

    state = pickle.dumps(vector_state(vec))
    actions = np.random.default_rng(0).integers(4, size=(80, 2))
    tail = [vec.step(a) for a in actions]
    restored = make_vector_env(cfg, train=True, seed=1, num_envs=2)
    restored.reset()
    set_vector_state(restored, pickle.loads(state))
    for (obs, rewards, terminated, truncated, _), a in zip(tail, actions):
        o, r, te, tr, _ = restored.step(a)
        assert np.array_equal(o, obs) and np.array_equal(r, rewards)
        assert np.array_equal(te, terminated) and np.array_equal(tr, truncated)
