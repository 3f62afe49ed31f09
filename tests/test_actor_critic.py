import pytest
import torch

from iris.actor_critic import ActorCritic, lambda_returns
from iris.agent import Agent
from iris.config import catch, paper
from iris.imagination import ImaginedWorld, GraphedImaginedWorld, imagine, sample
from iris.world_model import Context

SIZE = catch().env.size  # frames of the catch preset


def test_paper_size():
    assert sum(p.numel() for p in ActorCritic(paper().actor_critic, 18).parameters()) == 3_225_139


def test_lambda_returns_against_the_definition():
    rewards = torch.tensor([[1.0, 0.0, 2.0]])  # 3 steps between 4 states
    values = torch.tensor([[0.5, 1.0, -1.0, 3.0]])
    ends = torch.tensor([[False, True, False]])
    g, lam = 0.9, 0.8
    got = lambda_returns(rewards, values, ends, g, lam)[0].tolist()
    g3 = 3.0  # the last state's value bootstraps
    g2 = 2.0 + g * ((1 - lam) * 3.0 + lam * g3)
    g1 = 0.0  # the episode ends after step 1: nothing after it counts
    g0 = 1.0 + g * ((1 - lam) * 1.0 + lam * g1)
    assert torch.allclose(torch.tensor(got), torch.tensor([g0, g1, g2]))
    # lambda = 1 gives discounted Monte-Carlo returns bootstrapped at the end; lambda = 0 one-step TD targets.
    mc = lambda_returns(rewards, values, torch.zeros_like(ends), g, 1.0)[0]
    assert torch.isclose(mc[0], torch.tensor(1.0 + g * 0.0 + g**2 * 2.0 + g**3 * 3.0))
    td = lambda_returns(rewards, values, torch.zeros_like(ends), g, 0.0)[0]
    assert torch.allclose(td, rewards[0] + g * values[0, 1:])


def test_imagined_rollout_shapes_and_a_loss_that_trains_only_the_actor_critic():
    torch.manual_seed(0)
    cfg = catch()
    agent = Agent(cfg, 3).eval()
    frames = torch.randint(0, 256, (5, 4, SIZE, SIZE, 3), dtype=torch.uint8)
    mask = torch.tensor([[False, False, True, True]] * 5)
    tokens = agent.tokenizer.tokenize(frames, mask)
    seen = agent.tokenizer.detokenize(tokens, mask)
    traj = imagine(agent.actor_critic, agent.tokenizer, ImaginedWorld(agent.world_model, 5), tokens, seen, mask, horizon=6)
    assert traj["values"].shape == (5, 6) and traj["logits"].shape == (5, 5, 3)  # 6 states, 5 steps between
    for key in ("actions", "rewards", "ends"):
        assert traj[key].shape == (5, 5)
    assert set(traj["rewards"].unique().tolist()) <= {-1.0, 0.0, 1.0}
    loss, logs = agent.actor_critic.compute_loss(traj)
    loss.backward()
    assert all(p.grad is not None for p in agent.actor_critic.parameters())
    assert all(p.grad is None for p in agent.world_model.parameters())
    assert all(p.grad is None for p in agent.tokenizer.parameters())
    assert 0 < logs["entropy"] <= torch.log(torch.tensor(3.0)) + 1e-6
    # Greedy rollouts are reproducible and long horizons refresh a full key-value cache without error.
    greedy = ImaginedWorld(agent.world_model, 5, greedy=True)
    a = imagine(agent.actor_critic, agent.tokenizer, greedy, tokens, seen, mask, horizon=12)
    b = imagine(agent.actor_critic, agent.tokenizer, greedy, tokens, seen, mask, horizon=12)
    assert torch.equal(a["actions"], b["actions"]) and torch.equal(a["rewards"], b["rewards"])


def test_burn_in_is_the_actor_critic_stepped_over_the_real_frames():
    torch.manual_seed(0)
    ac = ActorCritic(catch().actor_critic, 3)
    frames = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    mask = torch.tensor([[False, False, False], [False, True, True]])
    h, c = ac.burn_in(frames, mask)
    assert h[0].abs().sum() == 0 and c[0].abs().sum() == 0  # padded rows stay at the zero state
    state = ac.initial_state(1)
    with torch.no_grad():
        for t in (1, 2):
            state = ac(frames[1:, t], state)[2]
    assert torch.allclose(h[1], state[0][0], atol=1e-6) and torch.allclose(c[1], state[1][0], atol=1e-6)


def test_reference_mode_and_bf16_agree_with_the_cached_fp32_path():
    """The speed-ups keep the algorithm: no cache, and the static cache that CUDA graphs capture, give the same
    greedy dream; bf16 autocast (the GPU path, run here on the CPU) gives the same losses within tolerance."""
    torch.manual_seed(0)
    agent = Agent(catch(), 3).eval()
    frames = torch.randint(0, 256, (4, 4, SIZE, SIZE, 3), dtype=torch.uint8)
    mask = torch.ones(4, 4, dtype=torch.bool)
    tokens = agent.tokenizer.tokenize(frames)
    wm, parts = agent.world_model, (tokens, agent.tokenizer.detokenize(tokens), mask)

    def dream(world: ImaginedWorld, horizon: int) -> dict[str, torch.Tensor]:
        return imagine(agent.actor_critic, agent.tokenizer, world, *parts, horizon=horizon)

    cached = dream(ImaginedWorld(wm, 4, greedy=True), 10)  # 10 steps also restart a full context
    for other in (ImaginedWorld(wm, 4, use_cache=False, greedy=True), ImaginedWorld(wm, 4, greedy=True, static=True)):
        recomputed = dream(other, 10)
        for key in ("actions", "rewards", "ends"):
            assert torch.equal(cached[key], recomputed[key])
        assert torch.allclose(cached["values"], recomputed["values"], atol=1e-4)
    torch.manual_seed(1)
    loss32, _ = agent.actor_critic.compute_loss(dream(ImaginedWorld(wm, 4), 6))
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        traj16 = dream(ImaginedWorld(wm, 4), 6)  # made under autocast, as the trainer does: a bf16 cache
        loss16, _ = agent.actor_critic.compute_loss(traj16)
    assert torch.isclose(loss16.float(), loss32, rtol=0.1, atol=0.02)


def test_a_dream_under_autocast_computes_what_autocast_computes_with_the_trained_weights():
    """Made under autocast, an ImaginedWorld imagines with a copy whose linear weights are pre-cast to bf16: pass for pass
    the very numbers of the trained fp32 model under autocast, also after the trained weights change."""
    torch.manual_seed(0)
    wm = Agent(catch(), 3).world_model.eval()
    tokens, actions = torch.randint(0, catch().tokenizer.vocab_size, (4, 16)), torch.tensor([0, 1, 2, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dream = ImaginedWorld(wm, 4, static=True)
    assert dream.world_model.blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert wm.blocks[0].attn.qkv.weight.dtype == torch.float32
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():  # one context a step, as in training
            dream.restart(tokens)
            reference = Context(wm, 4, static=True)
            reference.feed(wm.frame_embed(tokens[:, :-1]))  # the last token waits for the action, as in an ImaginedWorld
            for embed in (lambda m: m.action_embed(actions), lambda m: m.frame_embed(tokens[:, 0])):
                assert torch.equal(dream.context.feed(embed(dream.world_model)[:, None]), reference.feed(embed(wm)[:, None]))
        with torch.no_grad():  # an update of the world model: the next restart takes the new weights
            for p in wm.parameters():
                p.add_(0.05 * torch.randn_like(p))


def test_gumbel_max_sampling_matches_the_distribution():
    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 1.0, 2.0]]).expand(20000, 3)
    freq = torch.bincount(sample(logits), minlength=3).float() / 20000
    assert torch.allclose(freq, torch.softmax(logits[0], 0), atol=0.015)
    assert torch.equal(sample(logits, greedy=True), torch.full((20000,), 2))


def test_no_loss_after_the_first_imagined_end_when_masked():
    """mask_after_end: whatever is imagined after an end (noise: the world model never trains past one)
    changes neither loss nor gradient; unmasked (the paper), it does."""
    torch.manual_seed(0)
    cfg = catch().actor_critic
    ac = ActorCritic(cfg, 3)
    traj = {"logits": torch.randn(2, 4, 3, requires_grad=True), "values": torch.randn(2, 5, requires_grad=True),
            "actions": torch.randint(0, 3, (2, 4)), "rewards": torch.zeros(2, 4),
            "ends": torch.tensor([[False, True, False, False], [False] * 4])}
    noisy = {k: v.detach().clone() for k, v in traj.items()}
    noisy["logits"][0, 2:] += 5 * torch.randn(2, 3)
    noisy["values"][0, 2:] += 5
    noisy["rewards"][0, 2:] = -1.0
    for masked in (True, False):
        ac.cfg.mask_after_end = masked
        losses = [ac.compute_loss(t)[0] for t in (traj, noisy)]
        assert torch.isclose(losses[0], losses[1]) == masked
    ac.cfg.mask_after_end = True
    ac.compute_loss(traj)[0].backward()
    assert traj["logits"].grad[0, 2:].abs().sum() == 0 and traj["logits"].grad[0, :2].abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graph_dream_equals_the_eager_dream():
    """The captured imagined step, replayed across a context restart, gives the eager greedy rollout over the same
    static cache (in bf16 the dynamic cache's attention kernels round differently, which flips near-tied argmaxes
    of an untrained model); sampled rollouts draw fresh randomness at each replay."""
    torch.manual_seed(0)
    agent = Agent(catch(), 3).cuda().eval()
    frames = torch.randint(0, 256, (4, 4, SIZE, SIZE, 3), dtype=torch.uint8, device="cuda")
    mask = torch.ones(4, 4, dtype=torch.bool, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        tokens = agent.tokenizer.tokenize(frames)
        parts = (tokens, agent.tokenizer.detokenize(tokens), mask)
        eager = imagine(agent.actor_critic, agent.tokenizer, ImaginedWorld(agent.world_model, 4, greedy=True, static=True), *parts, 10)
        graphed_dream = GraphedImaginedWorld(agent.world_model, 4, greedy=True)
        for _ in range(2):  # the second rollout reuses the captured graph
            graphed = imagine(agent.actor_critic, agent.tokenizer, graphed_dream, *parts, 10)
            for key in ("actions", "rewards", "ends"):
                assert torch.equal(eager[key], graphed[key])
        sampled, first, actions = GraphedImaginedWorld(agent.world_model, 4), tokens[:, 0], mask[:, 0].long()
        draws = []
        for _ in range(2):  # the same step from the same state twice: different tokens
            sampled.restart(first)
            draws.append(sampled.step(first, actions)[0])
    assert not torch.equal(draws[0], draws[1])
