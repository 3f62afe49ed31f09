"""The epoch loop: collect experience, update the tokenizer, the world model, then the actor-critic in
imagination; evaluate; checkpoint. Everything lives in one run directory (iris/rundir.py) and a rerun on
the same directory resumes from the last epoch checkpoint (iris/checkpoint.py), bit for bit on the CPU.

    for epoch in 1..epochs:
        collect(collect_steps)                      while epoch <= collect_until_epoch
        for component in tokenizer, world model, actor-critic:
            update(component, steps_per_epoch)      once epoch > its start_after_epoch, until its stop_after_epoch
        evaluate(eval_episodes)                     every eval_every epochs
        checkpoint
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from iris import checkpoint, rundir
from iris.agent import RANDOM_POLICY, Agent, parameter_counts
from iris.collect import Collector, evaluate
from iris.components import Component, make_components
from iris.config import Config, validate
from iris.errors import ConfigError, DiskFull, NonFiniteLoss
from iris.dream import DREAM_STEPS, write_dream
from iris.envs import longest_episode, num_actions
from iris.episodes import Episode, EpisodeStore, stored_bytes
from iris.imagination import ImaginedWorld, imagine, new_imagined_world
from iris.lpips import load_lpips, require_weights
from iris.runtime import pick_device, set_up_runtime
from iris.tokenizer import TokenCache, to_device
from iris.vocabulary import ENV_STEPS, FAILED, FINISHED, RUNNING, STOPPED, TEST_RETURN, TEST_RETURN_STD, TRAIN_RETURN


def compile_nets(agent: Agent, lpips: torch.nn.Module | None) -> None:
    """torch.compile, in place (state_dict keys unchanged), the convolutional nets: the tokenizer's encoder and
    decoder (trained, and run at every imagined step to show the actor-critic its frame), the actor-critic's CNN
    and LPIPS. Eager, each of their many normalisations and activations reads and writes a whole feature map;
    compiled, they fuse. Batch sizes that vary (token-cache fills) get one dynamic-shape graph after the second.
    Off on the CPU by default: compiling takes minutes there, more than a short run saves."""
    for net in (agent.tokenizer.encoder, agent.tokenizer.decoder, agent.actor_critic.cnn, lpips):
        if net is not None:
            net.compile()


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
        self.components = make_components(self.agent, self.cfg, {"tokenizer": self.tokenizer_loss,
                                                                 "world_model": self.world_model_loss,
                                                                 "actor_critic": self.actor_critic_loss},
                                           after_epoch={"tokenizer": self.reseed_codes})
        self.lpips = load_lpips(self.cfg.tokenizer.lpips_weights).to(self.device) if self.cfg.tokenizer.perceptual_weight > 0 else None
        if self.runtime.compile:
            compile_nets(self.agent, self.lpips)
        self.store = EpisodeStore(self.run_dir / "episodes", self.cfg.training.sampling)
        self.collector = Collector(self.cfg.env, self.cfg.training.collect_envs, self.seed, self.device,
                                   self.cfg.training.time_limit_is_end)
        self.epoch, self.env_steps, self.elapsed = 0, 0, 0.0
        self.last_test_return: float | None = None
        self._imagined_world: ImaginedWorld | None = None
        self._tokens: tuple[tuple[int, int, int, int], TokenCache] | None = None
        checkpoint.remove_partial_writes(self.run_dir)
        state = checkpoint.read(self.run_dir, self.device)
        if state is not None:
            self.load_state_dict(state)
        else:  # stopped before its first checkpoint: what it collected and logged is redone, identically
            self.store.truncate(0)
            rundir.truncate_metrics(self.run_dir, 0)

    # ---- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "agent": self.agent.state_dict(),
            "optimizers": {c.name: c.optimizer.state_dict() for c in self.components},
            "collector": self.collector.state_dict(),
            "rng": checkpoint.rng_state(self.rng),
            "epoch": self.epoch, "env_steps": self.env_steps, "elapsed": self.elapsed,
            "episodes": self.store.num_episodes, "last_test_return": self.last_test_return,
            # A frozen tokenizer's cache lives on across epochs, its rows computed in whatever batches sampling
            # asked for (the convolutions round by batch shape): a resumed run takes them as they were, bit for bit.
            # `tokens`, not the cache last used: the store may have grown since (an epoch in which nothing trained).
            "token_cache": self.tokens.state_dict()
            if self._tokens is not None and not self.component("tokenizer").active(self.epoch + 1) else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.agent.load_state_dict(state["agent"])
        for c in self.components:
            c.optimizer.load_state_dict(state["optimizers"][c.name])
        self.collector.load_state_dict(state["collector"])
        checkpoint.set_rng_state(state["rng"], self.rng)
        self.epoch, self.env_steps, self.elapsed = state["epoch"], state["env_steps"], state["elapsed"]
        self.last_test_return = state["last_test_return"]
        # Episodes finished after the checkpoint are collected again, identically, from the restored envs.
        self.store.truncate(state["episodes"])
        self.store.set_pending(self.collector.in_progress())
        self._tokens = None
        if state.get("token_cache") is not None:
            cache = TokenCache(self.agent.tokenizer, self.store.num_steps, self.device)
            cache.load_state_dict(state["token_cache"])
            self._tokens = self.token_cache_key(), cache
        rundir.truncate_metrics(self.run_dir, self.epoch)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def use_precision(self, bf16: bool) -> None:
        """Switch autocast on or off for what follows (iris-bench perf --precision compares the two)."""
        # the rollout's cache and weight copy, and the token cache's reconstructions, take the precision they are made in
        self.bf16, self._imagined_world, self._tokens = bf16, None, None

    # ---- one component's updates ---------------------------------------------------------------------
    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def update(self, component: Component, steps: int) -> dict[str, float]:
        """`steps` optimiser steps of one component, each on a freshly sampled batch; the mean of its logged terms."""
        component.module.train()
        sums: dict[str, torch.Tensor] = defaultdict(float)
        for _ in tqdm(range(steps), desc=component.name, leave=False, disable=None):
            with self.autocast():
                loss, logs = component.loss()
            component.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(component.module.parameters(), self.cfg.training.grad_clip)
            component.optimizer.step()
            component.updates += 1
            for k, v in {"loss": loss.detach(), **logs}.items():
                sums[k] = sums[k] + v
        name = component.name
        means = {f"{name}/{k}": float(v) / steps for k, v in sums.items()}  # one host sync per component
        if not math.isfinite(means[f"{name}/loss"]):
            raise NonFiniteLoss(f"{name} loss became {means[f'{name}/loss']} in epoch {self.epoch}; "
                                f"the last good checkpoint (epoch {self.epoch - 1}) is kept")
        component.module.eval()
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
        traj = imagine(self.agent.actor_critic, self.agent.tokenizer, self.imagined_world(), *self.burn_in_batch(),
                       self.cfg.actor_critic.horizon)
        return self.agent.actor_critic.compute_loss(traj)

    def burn_in_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Real segments for imagination, as iris.imagination.imagine takes them: tokens, the reconstructions the agent
        sees (never the frames themselves) and the mask, of burn_in frames for the LSTM then the frame to start from."""
        seg = self.segments(self.cfg.actor_critic.batch_size, self.cfg.actor_critic.burn_in + 1, from_start=False)
        tokens = self.tokenize(seg)
        return tokens, self.detokenize(tokens, seg), to_device(seg["mask"], self.device)

    def imagined_world(self) -> ImaginedWorld:
        """The imagination rollout, made once; call it under self.autocast(): its cache takes the passes' precision."""
        if self._imagined_world is None:
            t = self.cfg.training
            self._imagined_world = new_imagined_world(self.agent.world_model, self.cfg.actor_critic.batch_size,
                                                      t.kv_cache, t.cuda_graphs)
        return self._imagined_world

    @property
    def tokens(self) -> TokenCache:
        """The token cache of the store and tokenizer as they are now: a new one after either changed, keeping the
        finished episodes' rows when only the store grew (a frozen tokenizer: tokenizer.stop_after_epoch)."""
        now = self.token_cache_key()
        if self._tokens is None or self._tokens[0][:2] != now[:2]:
            cache = TokenCache(self.agent.tokenizer, self.store.num_steps, self.device)
            if self._tokens is not None and self._tokens[0][1:3] == now[1:3]:
                cache.keep(self._tokens[1], self._tokens[0][3])
            self._tokens = now, cache
        return self._tokens[1]

    def token_cache_key(self) -> tuple[int, int, int, int]:
        """What a token cache made now is valid for: the store's version and the tokenizer's updates (all of it), the
        store's cuts and its finished steps (the rows a cache of the next version may keep)."""
        return self.store.version, self.component("tokenizer").updates, self.store.cuts, self.store.finished_steps

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
        return episodes

    # ---- the epoch loop ------------------------------------------------------------------------------
    def run_epoch(self) -> dict:
        t = self.cfg.training
        row: dict = {"epoch": self.epoch}
        start = time.perf_counter()
        if self.epoch <= t.collect_until_epoch:
            episodes = self.collect(t.collect_steps)
            self.env_steps += t.collect_steps
            if episodes:
                row[TRAIN_RETURN] = float(np.mean([e.ret for e in episodes]))
                row["train/length_mean"] = float(np.mean([len(e) for e in episodes]))
            row["throughput/collect_steps_per_s"] = t.collect_steps / (time.perf_counter() - start)
        for component in self.components:
            if component.active(self.epoch) and self.store.num_steps > 0:
                tic = time.perf_counter()
                row.update(self.update(component, component.steps_per_epoch))
                row[f"throughput/{component.name}_steps_per_s"] = component.steps_per_epoch / (time.perf_counter() - tic)
                if component.after_epoch is not None:
                    component.after_epoch()
        if t.eval_every and self.epoch % t.eval_every == 0:
            returns, lengths = self.evaluate(t.eval_episodes)
            self.last_test_return = float(np.mean(returns))
            row.update({TEST_RETURN: self.last_test_return, TEST_RETURN_STD: float(np.std(returns)),
                        "test/length_mean": float(np.mean(lengths))})
        row[ENV_STEPS] = self.env_steps
        row["episodes"] = self.store.num_episodes
        row["epoch_seconds"] = time.perf_counter() - start
        return row

    def reseed_codes(self) -> None:
        """catch's fix against codebook collapse (tokenizer.code_reset_steps): unused codes re-seeded after updates."""
        done = (self.epoch - self.cfg.tokenizer.start_after_epoch) * self.cfg.tokenizer.steps_per_epoch
        if done <= self.cfg.tokenizer.code_reset_steps:
            frames = self.sample_frames()  # before the generator's seed: the run's random stream stays as it was
            self.agent.tokenizer.reseed_unused_codes(frames, torch.Generator().manual_seed(int(self.rng.integers(2**31))))
            self.component("tokenizer").updates += 1  # the codebook changed: tokens computed before are stale

    def evaluate(self, episodes: int, temperature: float | None = None) -> tuple[list[float], list[int]]:
        self.agent.eval()
        seed = int(np.random.SeedSequence([self.seed, self.epoch, 1]).generate_state(1)[0])
        temperature = self.cfg.training.eval_temperature if temperature is None else temperature
        with self.autocast():
            return evaluate(self.agent, self.cfg.env, episodes, temperature, seed, self.device)

    def log(self, line: str) -> None:
        tqdm.write(line)
        rundir.append_line(self.run_dir / "train.log", line)

    def train(self, on_epoch: Callable[[dict], None] | None = None, max_epochs: int | None = None) -> dict | None:
        t = self.cfg.training
        finished = rundir.read_eval(self.run_dir) if self.epoch >= t.epochs else None
        if finished is not None:  # nothing to do; status.json says so again if a damaged file had marked it failed
            rundir.write_status(self.run_dir, state=FINISHED, epoch=self.epoch, env_steps=self.env_steps,
                                last_test_return=finished["mean"], error=None)
            tqdm.write(final_summary(finished))
            return finished
        rundir.write_status(self.run_dir, state=RUNNING, epoch=self.epoch, epochs=t.epochs, env_steps=self.env_steps,
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
                checkpoint.write(self.run_dir, self.state_dict())
                rundir.write_status(self.run_dir, state=RUNNING, epoch=self.epoch, env_steps=self.env_steps,
                                    last_test_return=self.last_test_return)
                self.log(summary(row, t.epochs))
                if on_epoch is not None:
                    on_epoch(row)
            if self.epoch < t.epochs:
                return None
            returns, lengths = self.evaluate(t.final_eval_episodes)
            extra = {}
            if t.random_baseline_episodes > 0:  # the same test episodes, actions drawn uniformly
                random_returns, _ = self.evaluate(t.random_baseline_episodes, temperature=RANDOM_POLICY)
                extra["random_policy"] = {"episodes": len(random_returns), "mean": float(np.mean(random_returns)),
                                          "std": float(np.std(random_returns)),
                                          "returns": [float(r) for r in random_returns]}
            result = rundir.write_eval(self.run_dir, returns, lengths, self.env_steps, runtime=self.runtime.record(),
                                       wall_seconds=self.elapsed, seed=self.seed, **extra)
            latest = (self.store.episodes or self.store.pending)[-1]
            write_dream(self.agent, latest, self.run_dir / "dream.gif", self.run_dir / "reconstructions.png", seed=self.seed)
            rundir.write_status(self.run_dir, state=FINISHED, last_test_return=result["mean"])
            self.log(final_summary(result))
            return result
        except BaseException as e:
            mark_stopped(self.run_dir, e)
            raise


def summary(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"env steps {row['env_steps']}", f"{row['epoch_seconds']:.1f}s"]
    for key, label in ((TRAIN_RETURN, "train return"), (TEST_RETURN, "test return"),
                       ("tokenizer/loss", "tok"), ("world_model/loss", "wm"), ("actor_critic/loss", "ac")):
        if key in row:
            parts.append(f"{label} {row[key]:.3f}")
    return " | ".join(parts)


def final_summary(result: dict) -> str:
    """eval.json in one line, with the random policy's return beside it when it was measured."""
    line = f"final evaluation: {result['mean']:.3f} +- {result['std']:.3f} over {result['episodes']} episodes"
    random = result.get("random_policy")
    if random is not None:
        line += f"; a random policy: {random['mean']:.3f} over {random['episodes']}"
        if "std" in random:  # runs before it was recorded have the mean only
            half = 1.96 * math.sqrt(result["std"] ** 2 / result["episodes"] + random["std"] ** 2 / random["episodes"])
            difference = result["mean"] - random["mean"]
            line += f"; difference {difference:+.3f} (95% interval {difference - half:+.3f} to {difference + half:+.3f})"
    return line


def load_agent(run_dir: Path, device: str = "auto") -> tuple[Agent, Config, dict]:
    """The agent of a run's last checkpoint (for eval and dream), with its config, counters and the
    episodes that were in progress then."""
    run_dir = Path(run_dir)
    spec = rundir.read_spec(run_dir)
    if spec is None:
        raise ConfigError(f"{run_dir} holds no trained run (spec.json and {checkpoint.CHECKPOINT} are needed)")
    cfg = rundir.spec_config(spec)
    # The same global torch flags as training (flush-denormal: CPU convolutions ~7x faster), on the device asked for.
    dev = set_up_runtime(dataclasses.replace(cfg.training, device=device)).device
    state = checkpoint.read(run_dir, dev)
    if state is None:
        raise ConfigError(f"{run_dir} holds no trained run (spec.json and {checkpoint.CHECKPOINT} are needed)")
    agent = Agent(cfg, num_actions(cfg.env.game)).to(dev)
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


def disk_needed(cfg: Config) -> rundir.DiskNeed:
    """A run of `cfg`: every step it collects stored (iris.episodes.stored_bytes), and a checkpoint of its parameters
    and of the longest episodes the collector can hold in progress."""
    t, frame_bytes = cfg.training, cfg.env.size ** 2 * 3
    per_env = -(-t.collect_steps // t.collect_envs) * min(t.epochs, t.collect_until_epoch)  # as Collector.collect steps
    in_progress = t.collect_envs * min(per_env, longest_episode(cfg.env)) * frame_bytes
    # dream.gif's [real | reconstructed | imagined] frames and reconstructions.png's 8 pairs take about their raw size
    pictures = (3 * (DREAM_STEPS + 1) + 2 * 8) * frame_bytes
    return rundir.DiskNeed(episodes=stored_bytes(t.collect_envs * per_env, frame_bytes),
                           checkpoint=checkpoint.disk_bytes(parameter_counts(cfg)["total"], in_progress),
                           other=pictures + 1000 * t.epochs)  # ~1 kB of metrics and log rows an epoch


def train(run_dir: Path, on_epoch: Callable[[dict], None] | None = None, max_epochs: int | None = None) -> dict | None:
    """Train (or resume) the run in `run_dir`; returns the final evaluation, or None if stopped by max_epochs.
    A run that cannot start (a missing weights file, a damaged file) is marked failed with the reason."""
    try:
        trainer = Trainer(run_dir)
    except Exception as e:
        mark_stopped(run_dir, e)
        raise
    return trainer.train(on_epoch, max_epochs)


def mark_stopped(run_dir: Path, e: BaseException) -> None:
    """status.json says why the run stopped: failed (an error) or stopped (interrupted, resumable). Where the disk is
    too full for even that, the error raised after this still says why, and status.json keeps its last version."""
    with contextlib.suppress(DiskFull):
        rundir.write_status(run_dir, state=FAILED if isinstance(e, Exception) else STOPPED,
                            error=f"{type(e).__name__}: {e}")
