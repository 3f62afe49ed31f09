import numpy as np
import pytest
import torch

from iris.errors import ConfigError
from iris.config import paper, tiny
from iris.envs import make_env
from iris.lpips import LPIPS, load_lpips
from iris.episodes import Episode, EpisodeStore
from iris.tokenizer import TokenCache, Tokenizer, float_to_frames, frames_to_float


def test_shapes_tokens_and_round_trip_of_pixels():
    tok = Tokenizer(tiny().tokenizer)
    frames = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    assert torch.equal(float_to_frames(frames_to_float(frames)), frames)
    z, z_q, tokens = tok.encode(frames_to_float(frames))
    assert tokens.shape == (3, 16) and tok.tokens_per_frame == 16
    assert z.shape == z_q.shape == (3, tiny().tokenizer.embed_dim, 4, 4)
    assert tokens.min() >= 0 and tokens.max() < tiny().tokenizer.vocab_size
    assert tok.reconstruct(frames).shape == (3, 3, 64, 64)
    assert torch.equal(tok.tokenize(frames[None]), tokens[None])  # leading dims pass through


def test_paper_codebook_init_and_size():
    tok = Tokenizer(paper().tokenizer)
    w = tok.codebook.weight
    assert w.shape == (512, 512) and w.abs().max() <= 1 / 512
    assert sum(p.numel() for p in tok.parameters()) == 4_027_523


def test_straight_through_gradient_reaches_the_encoder_and_the_codebook_only_through_its_term():
    cfg = tiny().tokenizer
    cfg.commitment_weight = 0.0
    tok = Tokenizer(cfg)
    frames = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    x = frames_to_float(frames)
    z, z_q, _ = tok.encode(x)
    (x - tok.decode(z + (z_q - z).detach())).abs().mean().backward()  # the reconstruction path alone
    assert tok.encoder.net[0].weight.grad.abs().sum() > 0  # passed through the argmin
    assert tok.codebook.weight.grad is None or tok.codebook.weight.grad.abs().sum() == 0
    tok.zero_grad()
    loss, logs = tok.compute_loss(frames)
    loss.backward()
    assert tok.codebook.weight.grad.abs().sum() > 0  # the codebook term moves the codes
    assert set(logs) == {"codebook", "commitment", "l1", "codes_used"}


def test_overfits_a_handful_of_real_pong_frames():
    env = make_env(paper().env, train=True, seed=0)
    obs, _ = env.reset()
    frames = []
    for t in range(80):
        obs, *_ = env.step(env.action_space.sample())
        if t % 10 == 0:
            frames.append(obs)
    frames = torch.from_numpy(np.stack(frames))
    torch.manual_seed(0)
    cfg = tiny().tokenizer
    tok = Tokenizer(cfg)
    opt = torch.optim.Adam(tok.parameters(), lr=1e-3)
    l1 = []
    for _ in range(150):
        loss, logs = tok.compute_loss(frames)
        opt.zero_grad()
        loss.backward()
        opt.step()
        l1.append(float(logs["l1"]))
    assert np.mean(l1[-10:]) < 0.3 * np.mean(l1[:3]), l1[::15]


def test_lpips_weights_are_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.delenv("IRIS_LPIPS_WEIGHTS", raising=False)
    missing = tmp_path / "nope.pt"
    with pytest.raises(ConfigError, match="LPIPS weights not found at .*nope.pt.*perceptual_weight=0"):
        load_lpips(str(missing))
    torch.manual_seed(0)
    path = tmp_path / "lpips_vgg16.pt"
    state = {k: torch.rand_like(v) * 0.1 for k, v in LPIPS().state_dict().items()}
    torch.save(state, path)
    monkeypatch.setenv("IRIS_LPIPS_WEIGHTS", str(path))
    net = load_lpips("")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.allclose(net(x, x), torch.zeros(2), atol=1e-6)
    assert (net(x, x.flip(0)) > 0).all()
    assert not any(p.requires_grad for p in net.parameters())
    cfg = tiny().tokenizer
    cfg.perceptual_weight = 1.0
    _, logs = Tokenizer(cfg).compute_loss(torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8), net)
    assert logs["perceptual"] > 0


def test_token_cache_gives_tokenize_and_detokenize_computing_each_frame_once(tmp_path):
    torch.manual_seed(0)
    tok = Tokenizer(tiny().tokenizer).eval()
    rng = np.random.default_rng(0)
    store = EpisodeStore(tmp_path)
    for n in (3, 9):
        store.add(Episode(rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8), np.zeros(n), np.zeros(n), np.arange(n) == n - 1))
    cache = TokenCache(tok, store.num_steps, torch.device("cpu"))
    calls = {"encode": [], "decode": []}
    encode, decode = tok.encode, tok.decode
    for from_start in (True, False, True, False):
        seg = {k: torch.from_numpy(v) for k, v in store.sample_segments(8, 4, rng, from_start).items()}
        tokens = tok.tokenize(seg["observations"], seg["mask"])
        seen = tok.detokenize(tokens, seg["mask"])
        assert seen[~seg["mask"]].abs().sum() == 0 and seen[seg["mask"]].abs().sum() > 0
        tok.encode = lambda x: calls["encode"].append(len(x)) or encode(x)
        tok.decode = lambda z: calls["decode"].append(len(z)) or decode(z)
        assert torch.equal(cache.tokenize(seg["observations"], seg["mask"], seg["index"]), tokens)
        # equal up to the convolutions' batch-size-dependent rounding (~1e-5; another frame differs by > 0.3)
        assert torch.allclose(cache.detokenize(tokens, seg["mask"], seg["index"]), seen, atol=1e-4)
        del tok.encode, tok.decode
    assert sum(calls["encode"]) == int(cache.known.sum()) <= store.num_steps  # each frame encoded once
    assert sum(calls["decode"]) == int(cache.decoded.sum()) <= store.num_steps  # and decoded once
    assert len(calls["encode"]) < 4 and len(calls["decode"]) < 4  # the later batches found their frames known
