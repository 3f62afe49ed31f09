"""What the official IRIS code feeds its networks, and when: burn-in length, time-limit ends, the collector's LSTM
restarted and burnt in at each collection, LPIPS dropout in tokenizer updates (sampling by episode: test_episodes)."""

import numpy as np
import pytest
import torch

from iris import rundir
from iris.actor_critic import ActorCritic
from iris.agent import Agent
from iris.collect import Collector
from iris.config import resolve, tiny
from iris.envs import num_actions
from iris.lpips import LPIPS
from iris.tokenizer import Tokenizer
from iris.trainer import Trainer


def test_the_actor_critic_burns_in_on_exactly_burn_in_real_frames(tmp_path, monkeypatch):
    """Official: a segment of 1 + burn_in frames; the LSTM reads the first burn_in, imagination starts from the last."""
    overrides = ["training.collect_steps=64", "training.collect_envs=4", "actor_critic.burn_in=5",
                 "actor_critic.batch_size=6", "actor_critic.horizon=3"]
    rundir.write_spec(tmp_path, resolve("catch", overrides), seed=0, preset="catch", overrides=overrides)
    trainer = Trainer(tmp_path)
    trainer.collect(64)
    seen = []
    real_burn_in = ActorCritic.burn_in

    def recording(self, frames, mask):  # the real burn-in, with what it was given written down
        seen.append(mask.clone())
        return real_burn_in(self, frames, mask)

    monkeypatch.setattr(ActorCritic, "burn_in", recording)
    with trainer.autocast():
        trainer.actor_critic_loss()
    (mask,) = seen
    assert mask.shape == (6, 5)  # burn_in frames read
    # Catch episodes last 7 steps: a segment ending at step s of its episode has min(s, 5) real frames burnt in.
    assert mask.sum(1).max() <= 5 and (mask.sum(1) == 5).any()


@pytest.mark.parametrize("time_limit_is_end", [True, False])
def test_a_time_limit_cut_is_stored_as_an_end_unless_asked_otherwise(time_limit_is_end):
    cfg = tiny()
    cfg.env.game, cfg.env.train_max_frames, cfg.env.train_noop_max = "Pong", 120, 0  # 30 agent steps, no point scored
    agent = Agent(cfg, num_actions("Pong")).eval()
    collector = Collector(cfg.env, 1, seed=0, device=torch.device("cpu"), time_limit_is_end=time_limit_is_end)
    (episode,) = collector.collect(agent, 30, temperature=1.0, epsilon=0.0, burn_in=4)
    assert len(episode) == 30 and episode.truncated
    assert episode.ends.tolist() == [False] * 29 + [time_limit_is_end]


def test_each_collection_starts_a_blank_lstm_burnt_in_on_the_episode_in_progress():
    torch.manual_seed(0)
    cfg = resolve("catch", ["training.collect_envs=3"])
    agent = Agent(cfg, 3).eval()
    collector = Collector(cfg.env, 3, seed=0, device=torch.device("cpu"))
    collector.collect(agent, 3 * 9, temperature=1.0, epsilon=0.0, burn_in=4)  # 9 steps: 2 into each second episode
    lengths = [len(b.actions) for b in collector.buffers]
    assert lengths == [2, 2, 2]

    def expected(burn_in):  # the official collector's reset: the last burn_in stored frames, padding before them
        state = agent.actor_critic.initial_state(3)
        frames = torch.from_numpy(np.stack([np.stack(b.observations) for b in collector.buffers]))  # [3, 2, H, W, 3]
        for t in range(max(0, 2 - burn_in), 2):
            _, _, state = agent.actor_critic(agent.tokenizer.reconstruct(frames[:, t]), state)
        return state

    for burn_in in (1, 4):
        got = collector.burnt_in_state(agent, burn_in)
        assert all(torch.allclose(g, e, atol=1e-6) for g, e in zip(got, expected(burn_in)))
    blank = collector.burnt_in_state(agent, 0)
    assert all(not s.any() for s in blank)
    # With other weights, the same frames give another state: it is recomputed, never carried over.
    before = collector.burnt_in_state(agent, 4)
    with torch.no_grad():
        agent.actor_critic.lstm.weight_ih.mul_(2)
    assert not torch.allclose(collector.burnt_in_state(agent, 4)[0], before[0])
    assert "lstm" not in collector.state_dict()


def test_lpips_dropout_is_on_in_tokenizer_updates_only():
    torch.manual_seed(0)
    cfg = tiny().tokenizer
    cfg.perceptual_weight = 1.0
    tokenizer = Tokenizer(cfg)
    lpips = LPIPS().eval()
    frames = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)

    def perceptual():
        return float(tokenizer.compute_loss(frames, lpips)[1]["perceptual"])

    tokenizer.eval()
    assert perceptual() == perceptual()  # no dropout outside training
    tokenizer.train()
    draws = [perceptual() for _ in range(4)]
    assert len(set(draws)) == 4  # Dropout(0.5) before each learned layer: another mask every update
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = torch.rand(2, 3, 64, 64) * 2 - 1
    torch.manual_seed(1)
    mean = torch.stack([lpips(x, y, dropout=True) for _ in range(400)]).mean(0)
    assert torch.allclose(mean, lpips(x, y), rtol=0.05)  # inverted dropout: the same distance on average
