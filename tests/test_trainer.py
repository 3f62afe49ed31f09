"""The trainer on the real Catch game, shrunk to seconds: resume exactness, failure handling, eval and dream."""

import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from benchmark.cli import main
from conftest import QUICK
from iris import rundir
from iris.config import resolve
from iris.errors import ConfigError, NonFiniteLoss
from iris.runtime import pick_device
from iris.trainer import Trainer, train


def new_run(run_dir, extra=()):
    overrides = QUICK + list(extra)
    rundir.write_spec(run_dir, resolve("catch", overrides), seed=3, preset="catch", overrides=overrides)
    return run_dir


def weights(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=False)["agent"]


def test_a_run_writes_its_directory_and_the_cli_reads_it(tmp_path, capsys):
    run = new_run(tmp_path / "run")
    result = train(run)
    assert result["episodes"] == 4 and len(result["returns"]) == 4
    assert all(r in (-1.0, 1.0) for r in result["returns"])
    assert result["random_policy"]["episodes"] == 24 and -1.0 <= result["random_policy"]["mean"] < 0.0  # catches 1 in 8
    rows = rundir.read_metrics(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["env_steps"] == 4 * 32
    assert "test/return_mean" in rows[1] and "test/return_mean" not in rows[0]
    assert {"tokenizer/loss", "world_model/loss", "actor_critic/loss"} <= set(rows[-1])
    status = rundir.read_status(run)
    assert status["state"] == "finished" and status["epoch"] == 4 and status["env_steps"] == 128
    assert (run / "dream.gif").stat().st_size > 0 and (run / "reconstructions.png").stat().st_size > 0
    mtime = (run / "eval.json").stat().st_mtime_ns
    assert train(run) == result and (run / "eval.json").stat().st_mtime_ns == mtime  # finished: nothing redone
    capsys.readouterr()
    # The train command on a finished run trains nothing and prints the learning curve and the final evaluation.
    assert main(["train", "--preset", "catch", "--seed", "3", "--run-dir", str(run), *(a for o in QUICK for a in ("--set", o))]) == 0
    out = capsys.readouterr().out
    assert "learning curve" in out and f"{rows[1]['test/return_mean']:.3f}" in out
    assert f"a random policy: {result['random_policy']['mean']:.3f} over 24" in out
    random = result["random_policy"]  # each of its returns, for the interval of the difference
    assert len(random["returns"]) == 24 and random["mean"] == pytest.approx(sum(random["returns"]) / 24)
    assert f"difference {result['mean'] - random['mean']:+.3f} (95% interval " in out
    assert main(["eval", "--run-dir", str(run), "--episodes", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["episodes"] == 3 and out["epoch"] == 4
    gif = tmp_path / "d.gif"
    assert main(["dream", "--run-dir", str(run), "--out", str(gif), "--steps", "5"]) == 0
    assert gif.exists() and (tmp_path / "d_reconstructions.png").exists()


@pytest.mark.parametrize("extra", [[], ["tokenizer.stop_after_epoch=1"]], ids=["all-train", "frozen-tokenizer"])
def test_killed_and_resumed_run_matches_the_straight_run(tmp_path, extra):
    straight = new_run(tmp_path / "straight", extra)
    Trainer(straight).train()
    resumed = new_run(tmp_path / "resumed", extra)
    proc = subprocess.Popen([sys.executable, "-c", f"from iris.trainer import train; train({str(resumed)!r})"])
    try:
        while (rundir.read_status(resumed) or {}).get("epoch", 0) < 2:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert rundir.read_status(resumed)["state"] == "running"  # killed without a word
    killed_at = torch.load(resumed / "checkpoint.pt", weights_only=False)["epoch"]
    assert 2 <= killed_at < 4
    train(resumed)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert rundir.read_metrics(resumed) == [
        {**r, "time": m["time"], "epoch_seconds": m["epoch_seconds"], **{k: m[k] for k in m if k.startswith("throughput/")}}
        for r, m in zip(rundir.read_metrics(straight), rundir.read_metrics(resumed))
    ]
    assert sorted(p.name for p in (resumed / "episodes").iterdir()) == sorted(p.name for p in (straight / "episodes").iterdir())


def test_a_resumed_run_takes_a_frozen_tokenizers_cache_from_its_checkpoint(tmp_path):
    """The cache's rows were computed in whatever batches sampling asked for, and the convolutions round by batch
    shape: recomputed, they would differ (catch resumed after epoch 4 of 6, tokenizer frozen after 2: 12 of the
    actor-critic's tensors differed from the straight run's; with the cache from the checkpoint, none)."""
    straight = Trainer(new_run(tmp_path, ["tokenizer.stop_after_epoch=1"]))
    straight.train(max_epochs=3)  # the actor-critic's burn-ins decode in epoch 3
    resumed = Trainer(tmp_path)
    assert resumed.epoch == 3
    theirs, mine = straight.tokens.state_dict(), resumed.tokens.state_dict()
    assert theirs["known"].any() and theirs["decoded"].any()
    assert all(torch.equal(theirs[k], mine[k]) for k in ("tokens", "known", "decoded"))
    assert torch.equal(theirs["frames"][theirs["decoded"]], mine["frames"][mine["decoded"]])  # the other rows: unset


def test_a_run_resumes_after_an_epoch_that_grew_the_store_and_trained_nothing(tmp_path):
    """Epoch 4 collects with every component stopped: the cache last used (epoch 3's) is smaller than the store."""
    stops = ["tokenizer.stop_after_epoch=1", "world_model.stop_after_epoch=2", "actor_critic.stop_after_epoch=3"]
    straight = Trainer(new_run(tmp_path, stops))
    straight.train(max_epochs=4)
    resumed = Trainer(tmp_path)
    assert resumed.epoch == 4 and resumed.tokens.known.shape == (resumed.store.num_steps,)
    assert torch.equal(resumed.tokens.known, straight.tokens.known) and resumed.tokens.known.any()


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    run = new_run(tmp_path / "run")
    trainer = Trainer(run)
    trainer.train(max_epochs=1)
    good = weights(run)
    trainer.agent.tokenizer.cfg.commitment_weight = math.nan  # poison the next tokenizer update
    with pytest.raises(NonFiniteLoss, match="tokenizer loss became nan in epoch 2; the last good checkpoint"):
        trainer.train()
    status = rundir.read_status(run)
    assert status["state"] == "failed" and "NonFiniteLoss" in status["error"] and status["epoch"] == 1
    assert all(torch.equal(good[k], v) for k, v in weights(run).items())


@pytest.mark.parametrize("key, value, valid", [("training.compile", "fast", "auto, on, off"),
                                                ("training.precision", "fp8", "auto, bf16, fp32")])
def test_unknown_speed_settings_are_one_line_errors(tmp_path, key, value, valid):
    with pytest.raises(ConfigError, match=f"^unknown {key} '{value}'; valid: {valid}$"):
        Trainer(new_run(tmp_path, [f"{key}={value}"]))


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cpu:0"])
def test_an_unknown_device_is_a_one_line_error(device):
    with pytest.raises(ConfigError, match=f"^unknown device '{device}'; valid: auto, cpu, cuda, cuda:N$"):
        pick_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="^device 'cuda', but torch finds no CUDA device here; valid here: auto, cpu$"):
        Trainer(new_run(tmp_path, ["training.device=cuda"]))


def test_a_horizon_without_an_imagined_step_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="^actor_critic.horizon=1 imagines nothing; valid: 2 or more$"):
        Trainer(new_run(tmp_path, ["actor_critic.horizon=1"]))


def test_a_stop_before_the_start_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^world_model.stop_after_epoch=1 stops before it starts \(after epoch 1\); "
                                          r"valid: 0 \(never\) or more than 1$"):
        Trainer(new_run(tmp_path, ["world_model.stop_after_epoch=1"]))


def test_a_component_trains_from_its_start_to_its_stop_epoch(tmp_path):
    trainer = Trainer(new_run(tmp_path, ["tokenizer.stop_after_epoch=2"]))
    trainer.train(max_epochs=2)
    before = {k: v.clone() for k, v in trainer.agent.state_dict().items()}
    trainer.train(max_epochs=4)
    after = trainer.agent.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in after if k.startswith("tokenizer."))
    assert not all(torch.equal(before[k], after[k]) for k in after if k.startswith("world_model."))
    rows = rundir.read_metrics(trainer.run_dir)
    assert ["tokenizer/loss" in row for row in rows] == [True, True, False, False]


def test_the_token_cache_keeps_the_finished_episodes_while_only_the_store_grows(tmp_path):
    trainer = Trainer(new_run(tmp_path))
    store = trainer.store
    trainer.collect(64)
    finished = store.finished_steps
    assert 0 < finished < store.num_steps  # episodes in progress too: numbered after the finished ones
    trainer.world_model_loss()  # fills the cache with the sampled frames' tokens
    trainer.burn_in_batch()  # and reconstructions
    old = {k: v.clone() for k, v in trainer.tokens.state_dict().items()}
    assert old["known"][:finished].any() and old["decoded"][:finished].any()

    trainer.collect(32)  # more episodes, the same tokenizer: what it knew of the finished ones still holds
    cache = trainer.tokens
    tokenizer = trainer.agent.tokenizer
    expected = {"tokens": tokenizer.tokenize(torch.from_numpy(np.concatenate([e.observations for e in store.episodes])))}
    expected["frames"] = tokenizer.detokenize(expected["tokens"])  # the finished episodes' steps, in their order
    for values, known in (("tokens", "known"), ("frames", "decoded")):
        kept = old[known][:finished]
        assert torch.equal(getattr(cache, known)[:finished], kept) and not getattr(cache, known)[finished:].any()
        assert torch.equal(getattr(cache, values)[:finished][kept], old[values][:finished][kept])
        # up to the convolutions' batch-shape rounding (~1e-5; another frame differs by > 0.3)
        assert torch.allclose(getattr(cache, values)[:finished][kept].float(), expected[values][:finished][kept].float(), atol=1e-4)

    trainer.world_model_loss()
    store.truncate(store.num_episodes - 1)  # steps renumbered: nothing is kept
    assert not trainer.tokens.known.any()
    trainer.world_model_loss()
    trainer.update(trainer.component("tokenizer"), 1)  # another tokenizer: nothing is kept
    assert not trainer.tokens.known.any()


def test_the_optimised_and_the_reference_mode_give_the_same_losses_on_the_same_batch(tmp_path):
    """The speed-ups keep the algorithm end to end: with the key-value cache, the token cache and torch.compile
    (on here, as on a GPU) or without them (perf's reference mode), the same collected data and random streams
    give the same losses."""
    from benchmark.measure.training_speed import REFERENCE

    losses = {}
    for mode, extra in (("optimised", ["actor_critic.burn_in=3", "training.compile=on"]), ("reference", ["actor_critic.burn_in=3", *REFERENCE])):
        trainer = Trainer(new_run(tmp_path / mode, extra))
        trainer.collect(64)
        torch.manual_seed(1)
        losses[mode] = [float(trainer.world_model_loss()[0].detach()) for _ in range(2)]
        losses[mode] += [float(trainer.actor_critic_loss()[0].detach()) for _ in range(2)]  # cached from the 2nd on
    assert losses["optimised"] == pytest.approx(losses["reference"], rel=1e-4)
    assert len(set(losses["optimised"])) == 4  # four different batches
