import torch

from iris.actor_critic import ActorCritic, lambda_returns
from iris.agent import Agent
from iris.config import catch, paper
from iris.imagination import imagine


def test_paper_size():
    assert sum(p.numel() for p in ActorCritic(paper().actor_critic, 18).parameters()) == 3_225_139


def test_lambda_returns_against_the_definition():
    rewards = torch.tensor([[1.0, 0.0, 2.0, 0.5]])
    values = torch.tensor([[0.5, 1.0, -1.0, 3.0]])
    ends = torch.tensor([[False, True, False, False]])
    g, lam = 0.9, 0.8
    got = lambda_returns(rewards, values, ends, g, lam)[0].tolist()
    g3 = 3.0
    g2 = 2.0 + g * ((1 - lam) * 3.0 + lam * g3)
    g1 = 0.0  # the episode ends after step 1: nothing after it counts
    g0 = 1.0 + g * ((1 - lam) * 1.0 + lam * g1)
    assert torch.allclose(torch.tensor(got), torch.tensor([g0, g1, g2, g3]))
    # lambda = 1 gives discounted Monte-Carlo returns bootstrapped at the end; lambda = 0 one-step TD targets.
    mc = lambda_returns(rewards, values, torch.zeros_like(ends), g, 1.0)[0]
    assert torch.isclose(mc[0], torch.tensor(1.0 + g * 0.0 + g**2 * 2.0 + g**3 * 3.0))
    td = lambda_returns(rewards, values, torch.zeros_like(ends), g, 0.0)[0]
    assert torch.allclose(td[:-1], rewards[0, :-1] + g * values[0, 1:])


def test_imagined_rollout_shapes_and_a_loss_that_trains_only_the_actor_critic():
    torch.manual_seed(0)
    cfg = catch()
    agent = Agent(cfg, 3).eval()
    frames = torch.randint(0, 256, (5, 4, 64, 64, 3), dtype=torch.uint8)
    mask = torch.tensor([[False, False, True, True]] * 5)
    traj = imagine(agent.actor_critic, agent.world_model, agent.tokenizer, frames, mask, horizon=6)
    assert traj["logits"].shape == (5, 6, 3)
    for key in ("values", "actions", "rewards", "ends"):
        assert traj[key].shape == (5, 6)
    assert set(traj["rewards"].unique().tolist()) <= {-1.0, 0.0, 1.0}
    loss, logs = agent.actor_critic.compute_loss(traj)
    loss.backward()
    assert all(p.grad is not None for p in agent.actor_critic.parameters())
    assert all(p.grad is None for p in agent.world_model.parameters())
    assert all(p.grad is None for p in agent.tokenizer.parameters())
    assert 0 < logs["entropy"] <= torch.log(torch.tensor(3.0)) + 1e-6
    # Greedy rollouts are reproducible and long horizons refresh a full key-value cache without error.
    a = imagine(agent.actor_critic, agent.world_model, agent.tokenizer, frames, mask, horizon=12, greedy=True)
    b = imagine(agent.actor_critic, agent.world_model, agent.tokenizer, frames, mask, horizon=12, greedy=True)
    assert torch.equal(a["actions"], b["actions"]) and torch.equal(a["rewards"], b["rewards"])


def test_burn_in_leaves_padded_rows_untouched():
    ac = ActorCritic(catch().actor_critic, 3)
    frames = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    mask = torch.tensor([[False, False, False], [True, True, True]])
    h, c = ac.burn_in(frames, mask)
    assert h[0].abs().sum() == 0 and c[0].abs().sum() == 0
    assert h[1].abs().sum() > 0


def test_reference_mode_and_bf16_agree_with_the_cached_fp32_path():
    """The speed-ups keep the algorithm: no cache gives the same greedy dream; bf16 autocast (the GPU
    path, run here on the CPU) gives the same losses within tolerance."""
    torch.manual_seed(0)
    agent = Agent(catch(), 3).eval()
    frames = torch.randint(0, 256, (4, 4, 64, 64, 3), dtype=torch.uint8)
    mask = torch.ones(4, 4, dtype=torch.bool)
    parts = (agent.actor_critic, agent.world_model, agent.tokenizer, frames, mask)
    cached = imagine(*parts, horizon=10, greedy=True, use_cache=True)  # 10 steps also restart a full context
    recomputed = imagine(*parts, horizon=10, greedy=True, use_cache=False)
    for key in ("actions", "rewards", "ends"):
        assert torch.equal(cached[key], recomputed[key])
    assert torch.allclose(cached["values"], recomputed["values"], atol=1e-4)
    torch.manual_seed(1)
    loss32, _ = agent.actor_critic.compute_loss(imagine(*parts, horizon=6))
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        traj16 = imagine(*parts, horizon=6)
        loss16, _ = agent.actor_critic.compute_loss(traj16)
    assert torch.isclose(loss16.float(), loss32, rtol=0.1, atol=0.02)
