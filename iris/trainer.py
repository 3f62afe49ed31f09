"""The epoch loop: collect experience, update the tokenizer, the world model, then the actor-critic in
imagination; evaluate; checkpoint. Everything lives in one run directory (iris/rundir.py) and a rerun on
the same directory resumes from the last epoch checkpoint, bit for bit on the CPU."""

from __future__ import annotations

import io
import math
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from iris import rundir
from iris.agent import Agent
from iris.collect import Collector, evaluate
from iris.config import Config, validate
from iris.errors import ConfigError, NonFiniteLoss, RunStateError
from iris.dream import write_dream
from iris.envs import num_actions
from iris.episodes import Episode, EpisodeStore
from iris.imagination import Dream, imagine, new_dream
from iris.lpips import load_lpips, require_weights
from iris.runtime import pick_device, set_up_runtime
from iris.tokenizer import TokenCache, to_device

CHECKPOINT = "checkpoint.pt"


def compile_nets(agent: Agent, lpips: torch.nn.Module | None) -> None:
    """torch.compile, in place (state_dict keys unchanged), the convolutional nets: the tokenizer's encoder and
    decoder (trained, and run at every imagined step to show the actor-critic its frame), the actor-critic's CNN
    and LPIPS. Eager, each of their many normalisations and activations reads and writes a whole feature map;
    compiled, they fuse. Batch sizes that vary (token-cache fills) get one dynamic-shape graph after the second.
    Off on the CPU by default: compiling takes minutes there, more than a short run saves."""
    for net in (agent.tokenizer.encoder, agent.tokenizer.decoder, agent.actor_critic.cnn, lpips):
        if net is not None:
            net.compile()


def make_optimizers(agent: Agent, cfg: Config) -> dict[str, torch.optim.Optimizer]:
    # Weight decay only on the world model's matrices, not on biases, norms or embeddings (as in minGPT).
    decay, no_decay = [], []
    for module in agent.world_model.modules():
        for name, p in module.named_parameters(recurse=False):
            (decay if name == "weight" and isinstance(module, torch.nn.Linear) else no_decay).append(p)
    wm = cfg.world_model
    fused = True if next(agent.parameters()).is_cuda else None  # CUDA: a few kernels per step instead of dozens
    return {
        "tokenizer": torch.optim.Adam(agent.tokenizer.parameters(), lr=cfg.tokenizer.lr, fused=fused),
        "world_model": torch.optim.AdamW(
            [{"params": decay, "weight_decay": wm.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=wm.lr,
            fused=fused,
        ),
        "actor_critic": torch.optim.Adam(agent.actor_critic.parameters(), lr=cfg.actor_critic.lr, fused=fused),
    }


class Trainer:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        spec = rundir.read_spec(self.run_dir)
        if spec is None:
            raise FileNotFoundError(f"{self.run_dir / 'spec.json'} is missing: create the run with iris.rundir.write_spec")
        self.cfg, self.seed = validate(rundir.spec_config(spec)), int(spec["seed"])
        self.runtime = set_up_runtime(self.cfg.training)
        self.device, self.bf16 = self.runtime.device, self.runtime.bf16
        random.seed(self.seed)
        torch.manual_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)
        self.agent = Agent(self.cfg, num_actions(self.cfg.env.game)).to(self.device).eval()  # update() trains one at a time
        self._dream: Dream | None = None
        self.optimizers = make_optimizers(self.agent, self.cfg)
        self.lpips = load_lpips(self.cfg.tokenizer.lpips_weights).to(self.device) if self.cfg.tokenizer.perceptual_weight > 0 else None
        if self.runtime.compile:
            compile_nets(self.agent, self.lpips)
        self.store = EpisodeStore(self.run_dir / "episodes", self.cfg.training.sampling)
        self.collector = Collector(self.cfg.env, self.cfg.training.collect_envs, self.seed, self.device,
                                   self.cfg.training.time_limit_is_end)
        self.epoch, self.env_steps, self.elapsed = 0, 0, 0.0
        self.last_test_return: float | None = None
        for partial in self.run_dir.glob(f".{CHECKPOINT}.*.tmp"):  # a checkpoint write cut off by a kill
            partial.unlink()
        if (self.run_dir / CHECKPOINT).exists():
            self.load_checkpoint()
        else:  # stopped before its first checkpoint: what it collected and logged is redone, identically
            self.store.truncate(0)
            rundir.truncate_metrics(self.run_dir, 0)
        self.tokens = self.new_token_cache()  # renewed whenever the store or the tokenizer changes

    # ---- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        state = {
            "agent": self.agent.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "collector": self.collector.state_dict(),
            "rng": {"python": random.getstate(), "numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            "epoch": self.epoch, "env_steps": self.env_steps, "elapsed": self.elapsed,
            "episodes": self.store.num_episodes, "last_test_return": self.last_test_return,
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        rundir.atomic_write_bytes(self.run_dir / CHECKPOINT, buffer.getvalue())

    def load_checkpoint(self) -> None:
        state = read_checkpoint(self.run_dir, self.device)
        self.agent.load_state_dict(state["agent"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        self.collector.load_state_dict(state["collector"])
        random.setstate(state["rng"]["python"])
        self.rng.bit_generator.state = state["rng"]["numpy"]
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if state["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        self.epoch, self.env_steps, self.elapsed = state["epoch"], state["env_steps"], state["elapsed"]
        self.last_test_return = state["last_test_return"]
        # Episodes finished after the checkpoint are collected again, identically, from the restored envs.
        self.store.truncate(state["episodes"])
        self.store.set_pending(self.collector.in_progress())
        rundir.truncate_metrics(self.run_dir, self.epoch)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    # ---- one component's updates ---------------------------------------------------------------------
    def update(self, name: str, steps: int, loss_fn: Callable[[], tuple[torch.Tensor, dict]]) -> dict[str, float]:
        module, optimizer = getattr(self.agent, name), self.optimizers[name]
        module.train()
        sums: dict[str, torch.Tensor] = defaultdict(float)
        for _ in tqdm(range(steps), desc=name, leave=False, disable=None):
            with self.autocast():
                loss, logs = loss_fn()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), self.cfg.training.grad_clip)
            optimizer.step()
            for k, v in {"loss": loss.detach(), **logs}.items():
                sums[k] = sums[k] + v
        means = {f"{name}/{k}": float(v) / steps for k, v in sums.items()}  # one host sync per component
        if not math.isfinite(means[f"{name}/loss"]):
            raise NonFiniteLoss(f"{name} loss became {means[f'{name}/loss']} in epoch {self.epoch}; "
                                f"the last good checkpoint (epoch {self.epoch - 1}) is kept")
        module.eval()
        return means

    def tokenizer_loss(self) -> tuple[torch.Tensor, dict]:
        return self.agent.tokenizer.compute_loss(self.sample_frames(), self.lpips)

    def sample_frames(self) -> torch.Tensor:
        """A tokenizer batch of stored frames, on the device."""
        return to_device(torch.from_numpy(self.store.sample_frames(self.cfg.tokenizer.batch_size, self.rng)), self.device)

    def world_model_loss(self) -> tuple[torch.Tensor, dict]:
        seg = self.segments(self.cfg.world_model.batch_size, self.cfg.world_model.max_blocks, from_start=True)
        tokens = self.tokenize(seg)
        actions, rewards, ends, mask = (to_device(seg[k], self.device) for k in ("actions", "rewards", "ends", "mask"))
        return self.agent.world_model.compute_loss(tokens, actions, rewards, ends, mask)

    def actor_critic_loss(self) -> tuple[torch.Tensor, dict]:
        ac = self.cfg.actor_critic
        seg = self.segments(ac.batch_size, ac.burn_in + 1, from_start=False)  # burn_in real frames, then the start
        tokens = self.tokenize(seg)
        seen = self.detokenize(tokens, seg)  # the agent only ever sees reconstructions
        mask = to_device(seg["mask"], self.device)
        traj = imagine(self.agent.actor_critic, self.agent.tokenizer, self.dream(), tokens, seen, mask, ac.horizon)
        return self.agent.actor_critic.compute_loss(traj)

    def dream(self) -> Dream:
        """The imagination rollout, made once; call it under self.autocast(): its cache takes the passes' precision."""
        if self._dream is None:
            t = self.cfg.training
            self._dream = new_dream(self.agent.world_model, self.cfg.actor_critic.batch_size, t.kv_cache, t.cuda_graphs)
        return self._dream

    def tokenize(self, seg: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.cfg.training.token_cache:
            return self.tokens.tokenize(seg["observations"], seg["mask"], seg["index"])
        return self.agent.tokenizer.tokenize(to_device(seg["observations"], self.device), to_device(seg["mask"], self.device))

    def detokenize(self, tokens: torch.Tensor, seg: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.cfg.training.token_cache:
            return self.tokens.detokenize(tokens, seg["mask"], seg["index"])
        return self.agent.tokenizer.detokenize(tokens, to_device(seg["mask"], self.device))

    def segments(self, batch: int, length: int, from_start: bool) -> dict[str, torch.Tensor]:
        """Sampled segments as host tensors: the token cache sends the device only the frames it lacks."""
        seg = self.store.sample_segments(batch, length, self.rng, from_start)
        return {k: torch.from_numpy(v) for k, v in seg.items()}

    def collect(self, steps: int) -> list[Episode]:
        """Act in the training envs for `steps` env steps; finished episodes go to disk, the rest are pending."""
        self.agent.eval()
        with self.autocast():
            episodes = self.collector.collect(self.agent, steps, self.cfg.training.temperature, self.cfg.training.epsilon,
                                              self.cfg.actor_critic.burn_in)
        for episode in episodes:
            self.store.add(episode)
        self.store.set_pending(self.collector.in_progress())
        self.tokens = self.new_token_cache()  # the store's step numbers moved
        return episodes

    def new_token_cache(self) -> TokenCache:
        return TokenCache(self.agent.tokenizer, self.store.num_steps, self.device)

    # ---- the epoch loop ------------------------------------------------------------------------------
    def run_epoch(self) -> dict:
        cfg, t = self.cfg, self.cfg.training
        row: dict = {"epoch": self.epoch}
        start = time.perf_counter()
        if self.epoch <= t.collect_until_epoch:
            episodes = self.collect(t.collect_steps)
            self.env_steps += t.collect_steps
            if episodes:
                row["train/return_mean"] = float(np.mean([e.ret for e in episodes]))
                row["train/length_mean"] = float(np.mean([len(e) for e in episodes]))
            row["throughput/collect_steps_per_s"] = t.collect_steps / (time.perf_counter() - start)
        for name, component in (("tokenizer", cfg.tokenizer), ("world_model", cfg.world_model), ("actor_critic", cfg.actor_critic)):
            if self.epoch > component.start_after_epoch and self.store.num_steps > 0:
                tic = time.perf_counter()
                row.update(self.update(name, component.steps_per_epoch, getattr(self, f"{name}_loss")))
                row[f"throughput/{name}_steps_per_s"] = component.steps_per_epoch / (time.perf_counter() - tic)
                if name == "tokenizer":
                    self.reseed_codes()
                    self.tokens = self.new_token_cache()
        if t.eval_every and self.epoch % t.eval_every == 0:
            returns, lengths = self.evaluate(t.eval_episodes)
            self.last_test_return = float(np.mean(returns))
            row.update({"test/return_mean": self.last_test_return, "test/return_std": float(np.std(returns)),
                        "test/length_mean": float(np.mean(lengths))})
        row["env_steps"] = self.env_steps
        row["episodes"] = self.store.num_episodes
        row["epoch_seconds"] = time.perf_counter() - start
        return row

    def reseed_codes(self) -> None:
        done = (self.epoch - self.cfg.tokenizer.start_after_epoch) * self.cfg.tokenizer.steps_per_epoch
        if done <= self.cfg.tokenizer.code_reset_steps:
            frames = self.sample_frames()  # before the generator's seed: the run's random stream stays as it was
            self.agent.tokenizer.reseed_unused_codes(frames, torch.Generator().manual_seed(int(self.rng.integers(2**31))))

    def evaluate(self, episodes: int, temperature: float | None = None) -> tuple[list[float], list[int]]:
        self.agent.eval()
        seed = int(np.random.SeedSequence([self.seed, self.epoch, 1]).generate_state(1)[0])
        temperature = self.cfg.training.eval_temperature if temperature is None else temperature
        with self.autocast():
            return evaluate(self.agent, self.cfg.env, episodes, temperature, seed, self.device)

    def log(self, line: str) -> None:
        tqdm.write(line)
        with open(self.run_dir / "train.log", "a") as f:
            f.write(line + "\n")

    def train(self, on_epoch: Callable[[dict], None] | None = None, max_epochs: int | None = None) -> dict | None:
        t = self.cfg.training
        finished = rundir.read_eval(self.run_dir) if self.epoch >= t.epochs else None
        if finished is not None:  # nothing to do
            tqdm.write(final_summary(finished))
            return finished
        rundir.write_status(self.run_dir, state="running", epoch=self.epoch, epochs=t.epochs, env_steps=self.env_steps,
                            error=None, runtime=self.runtime.record())
        last = t.epochs if max_epochs is None else min(t.epochs, self.epoch + max_epochs)
        try:
            while self.epoch < last:
                self.epoch += 1
                tic = time.perf_counter()
                row = self.run_epoch()
                self.elapsed += time.perf_counter() - tic
                row["time"] = self.elapsed
                rundir.append_metrics(self.run_dir, row)
                self.save_checkpoint()
                rundir.write_status(self.run_dir, state="running", epoch=self.epoch, env_steps=self.env_steps,
                                    last_test_return=self.last_test_return)
                self.log(summary(row, t.epochs))
                if on_epoch is not None:
                    on_epoch(row)
            if self.epoch < t.epochs:
                return None
            returns, lengths = self.evaluate(t.final_eval_episodes)
            extra = {}
            if t.random_baseline_episodes > 0:  # the same test episodes, actions drawn uniformly
                random_returns, _ = self.evaluate(t.random_baseline_episodes, temperature=math.inf)
                extra["random_policy"] = {"episodes": len(random_returns), "mean": float(np.mean(random_returns))}
            result = rundir.write_eval(self.run_dir, returns, lengths, self.env_steps, runtime=self.runtime.record(),
                                       wall_seconds=self.elapsed, seed=self.seed, **extra)
            latest = (self.store.episodes or self.store.pending)[-1]
            write_dream(self.agent, latest, self.run_dir / "dream.gif", self.run_dir / "reconstructions.png", seed=self.seed)
            rundir.write_status(self.run_dir, state="finished", last_test_return=result["mean"])
            self.log(final_summary(result))
            return result
        except BaseException as e:
            rundir.write_status(self.run_dir, state="failed" if isinstance(e, Exception) else "stopped",
                                error=f"{type(e).__name__}: {e}")
            raise


def summary(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"env steps {row['env_steps']}", f"{row['epoch_seconds']:.1f}s"]
    for key, label in (("train/return_mean", "train return"), ("test/return_mean", "test return"),
                       ("tokenizer/loss", "tok"), ("world_model/loss", "wm"), ("actor_critic/loss", "ac")):
        if key in row:
            parts.append(f"{label} {row[key]:.3f}")
    return " | ".join(parts)


def final_summary(result: dict) -> str:
    """eval.json in one line, with the random policy's return beside it when it was measured."""
    line = f"final evaluation: {result['mean']:.3f} +- {result['std']:.3f} over {result['episodes']} episodes"
    if "random_policy" in result:
        line += f"; a random policy: {result['random_policy']['mean']:.3f} over {result['random_policy']['episodes']}"
    return line


def load_agent(run_dir: Path, device: str = "auto") -> tuple[Agent, Config, dict]:
    """The agent of a run's last checkpoint (for eval and dream), with its config, counters and the
    episodes that were in progress then."""
    run_dir = Path(run_dir)
    spec = rundir.read_spec(run_dir)
    if spec is None or not (run_dir / CHECKPOINT).exists():
        raise ConfigError(f"{run_dir} holds no trained run (spec.json and {CHECKPOINT} are needed)")
    cfg = rundir.spec_config(spec)
    dev = pick_device(device)
    agent = Agent(cfg, num_actions(cfg.env.game)).to(dev)
    state = read_checkpoint(run_dir, dev)
    agent.load_state_dict(state["agent"])
    in_progress = [buf.to_episode() for buf in state["collector"]["buffers"] if buf.actions]
    return agent.eval(), cfg, {"epoch": state["epoch"], "env_steps": state["env_steps"], "device": dev,
                               "in_progress": in_progress}


def check_runnable(cfg: Config, device: bool = True) -> None:
    """What a run of `cfg` needs beyond a valid config: its device on this machine (unless device=False), and the LPIPS
    weights file where the perceptual term is on. A one-line ConfigError otherwise, before anything is written."""
    if device:
        pick_device(cfg.training.device)
    if cfg.tokenizer.perceptual_weight > 0:
        require_weights(cfg.tokenizer.lpips_weights)


def read_checkpoint(run_dir: Path, device: torch.device) -> dict:
    path = Path(run_dir) / CHECKPOINT
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # a truncated or overwritten file: zip, pickle or storage errors
        raise RunStateError(f"{path} is damaged ({type(e).__name__}): restore it from a copy, or move it away to "
                            "train the run again from its start") from None


def train(run_dir: Path, on_epoch: Callable[[dict], None] | None = None, max_epochs: int | None = None) -> dict | None:
    """Train (or resume) the run in `run_dir`; returns the final evaluation, or None if stopped by max_epochs.
    A run that cannot start (a missing weights file, a damaged file) is marked failed with the reason."""
    try:
        trainer = Trainer(run_dir)
    except Exception as e:
        rundir.write_status(run_dir, state="failed", error=f"{type(e).__name__}: {e}")
        raise
    return trainer.train(on_epoch, max_epochs)
