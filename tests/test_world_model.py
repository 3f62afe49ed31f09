import pytest
import torch

from iris.config import paper, tiny
from iris.world_model import WorldModel


def small_model() -> WorldModel:
    torch.manual_seed(0)
    cfg = tiny().world_model
    return WorldModel(cfg, vocab_size=32, num_actions=4, tokens_per_frame=4).eval()


def test_paper_size():
    assert sum(p.numel() for p in WorldModel(paper().world_model, 512, 18, 16).parameters()) == 8_451_077


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_cached_generation_matches_the_uncached_forward(static):
    wm = small_model()
    frames, actions = torch.randint(0, 32, (3, 5, 4)), torch.randint(0, 4, (3, 5))
    x = wm.embed_steps(frames, actions)  # [3, 25, D]
    full = wm(x)
    cache = wm.new_cache(3, static)
    pieces = [wm(x[:, :4], cache), wm(x[:, 4:5], cache), wm(x[:, 5:11], cache)]  # a prefix, one token, a chunk
    pieces += [wm(x[:, i:i + 1], cache) for i in range(11, 25)]
    assert cache.length == 25 and int(cache.position) == (25 if static else 0)
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)
    assert torch.allclose(wm.head_frame(torch.cat(pieces, 1)), wm.head_frame(full), atol=1e-5)


def test_loss_ignores_padding_and_learns_a_fixed_sequence():
    wm = small_model()
    b, t, k = 4, 6, 4
    frames, actions = torch.randint(0, 32, (b, t, k)), torch.randint(0, 4, (b, t))
    rewards, ends = torch.randn(b, t), torch.rand(b, t) < 0.3
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[:, :2] = False  # the segment starts before its episode
    loss, logs = wm.compute_loss(frames, actions, rewards, ends, mask)
    # Reference: every position predicts the next token; frame-token targets count where their step is real.
    seq = torch.cat([frames, actions[..., None] + 1000], dim=2).flatten(1)  # actions marked out of vocabulary
    logits = wm.head_frame(wm(wm.embed_steps(frames, actions)))[:, :-1]
    targets = seq[:, 1:]
    step_of_target = (torch.arange(1, t * (k + 1)) // (k + 1)).expand(b, -1)
    valid = (targets < 1000) & mask.gather(1, step_of_target)
    expected = torch.nn.functional.cross_entropy(logits[valid], targets[valid])
    assert torch.isclose(logs["frame"], expected, atol=1e-5)
    other_rewards, other_ends = rewards.clone(), ends.clone()
    other_rewards[:, :2], other_ends[:, :2] = -rewards[:, :2], ~ends[:, :2]  # padded targets change
    loss2, _ = wm.compute_loss(frames, actions, other_rewards, other_ends, mask)
    assert torch.isclose(loss, loss2)
    wm.train()
    opt = torch.optim.Adam(wm.parameters(), lr=3e-3)
    start = float(loss.detach())
    for _ in range(60):
        loss, _ = wm.compute_loss(frames, actions, rewards, ends, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.3 * start
