"""Training speed of a preset: every part of an epoch timed on real parts, in the optimised mode (the config as
given: KV cache, token cache; on CUDA bf16 autocast, TF32, CUDA graphs and torch.compile) and in the reference
mode (none of them), in one process.

A temporary run directory is filled with episodes collected by the untrained policy; then each component
trains for a few steps and a full epoch's time is put together from the measured rates."""

from __future__ import annotations

import io
import math
import resource
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import torch

from benchmark.measure.rows import Row
from iris import rundir
from iris.config import resolve
from iris.imagination import imagine
from iris.lpips import LPIPS, weights_path
from iris.tokenizer import to_device
from iris.runtime import pick_device
from iris.trainer import Trainer

REFERENCE = ["training.kv_cache=false", "training.precision=fp32", "training.cuda_graphs=false", "training.token_cache=false",
             "training.compile=off"]
ONCE = "compiling and capturing, once per run"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def measure(run_dir: Path, steps: int) -> dict[tuple[str, str], float]:
    """Rates of one mode; the store is filled once per mode with the same seed, so both see the same data."""
    trainer = Trainer(run_dir)
    cfg, dev = trainer.cfg, trainer.device
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t, tok, wm, ac = cfg.training, cfg.tokenizer, cfg.world_model, cfg.actor_critic
    collect_steps = max(t.collect_steps, wm.max_blocks * 4, ac.burn_in * 4)

    # Each part runs once before it is timed (the first collection also gives data to train on). That first call
    # compiles (torch.compile) and captures (CUDA graphs); what it takes beyond a steady call is paid once per run.
    first = timed(lambda: trainer.collect(collect_steps), dev)
    seconds = timed(lambda: trainer.collect(collect_steps), dev)
    out = {("collect", "env steps/s"): collect_steps / seconds}
    once = first - seconds
    for name, component, unit, per_step in (
        ("tokenizer", tok, "frames/s", tok.batch_size),
        ("world_model", wm, "tokens/s", wm.batch_size * wm.max_blocks * trainer.agent.world_model.block_size),
        ("actor_critic", ac, "updates/s", 1),
    ):
        part = trainer.component(name)
        first = timed(lambda: trainer.update(part, 1), dev)
        seconds = timed(lambda: trainer.update(part, steps), dev)
        out[(f"{name} training", unit)] = steps * per_step / seconds
        out[(f"{name} step", "s")] = seconds / steps
        once += first - seconds / steps
    out[(ONCE, "s")] = max(once, 0.0)

    # Imagination alone: burn-in and rollout from segments whose tokens and reconstructions are ready.
    with trainer.autocast(), torch.no_grad():
        batches = [trainer.burn_in_batch() for _ in range(steps + 1)]

    def dream(batch):
        with trainer.autocast(), torch.no_grad():
            imagine(trainer.agent.actor_critic, trainer.agent.tokenizer, trainer.imagined_world(), *batch, ac.horizon)

    dream(batches.pop())
    imagined = steps * ac.batch_size * (ac.horizon - 1)  # a rollout of H states imagines the H - 1 steps between them
    out[("imagination", "imagined steps/s")] = imagined / timed(lambda: [dream(b) for b in batches], dev)
    # The steps above ran with a warm token cache (a small store); an epoch also encodes each frame it samples
    # once, and decodes each burn-in frame once: S draws from the N frames of a full store hit N (1 - e^(-S/N))
    # distinct ones.
    frames = to_device(trainer.segments(wm.batch_size, wm.max_blocks, from_start=True)["observations"].flatten(0, 1), dev)
    with trainer.autocast():
        tokens = trainer.agent.tokenizer.tokenize(frames)
        encode_rate = len(frames) / timed(lambda: trainer.agent.tokenizer.tokenize(frames), dev)
        decode_rate = len(frames) / timed(lambda: trainer.agent.tokenizer.detokenize(tokens), dev)
    stored = t.collect_until_epoch * t.collect_steps
    distinct = lambda draws: stored * -math.expm1(-draws / stored)
    ac_draws = ac.steps_per_epoch * ac.batch_size * (ac.burn_in + 1)
    wm_draws = wm.steps_per_epoch * wm.batch_size * wm.max_blocks
    fill = distinct(wm_draws + ac_draws) / encode_rate + distinct(ac_draws) / decode_rate if t.token_cache else 0.0
    out[("token cache fill per epoch", "s")] = fill
    out[("full epoch", "s")] = fill + t.collect_steps / out[("collect", "env steps/s")] + sum(
        c.steps_per_epoch * out[(f"{n} step", "s")] for n, c in (("tokenizer", tok), ("world_model", wm), ("actor_critic", ac))
    )
    out[("peak host memory", "GiB")] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30
    out[("peak device memory", "GiB")] = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else 0.0
    return out


def training_speed(preset: str, game: str | None, overrides: list[str], device: str, steps: int) -> tuple[list[Row], str]:
    """Rows (figure, value, unit) for both modes and their ratio, and a one-line description of the setting."""
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [*overrides, f"training.device={device}"]
        probe = resolve(preset, overrides, game)
        if probe.tokenizer.perceptual_weight > 0 and not weights_path(probe.tokenizer.lpips_weights).is_file():
            # Timing needs the perceptual network's cost, not its trained values: random weights, same shapes.
            fake = Path(tmp) / "lpips_random.pt"
            torch.save(LPIPS().state_dict(), fake)
            overrides.append(f"tokenizer.lpips_weights={fake}")
        results = {}
        for mode, extra in (("optimised", []), ("reference", REFERENCE)):
            cfg = resolve(preset, overrides + extra, game)
            run_dir = Path(tmp) / mode
            rundir.write_spec(run_dir, cfg, seed=0, preset=preset, overrides=overrides + extra)
            with redirect_stdout(io.StringIO()):
                results[mode] = measure(run_dir, steps)
    dev = pick_device(device)
    setting = (f"preset {preset}, game {cfg.env.game}, device {dev}"
               f"{' (' + torch.cuda.get_device_name(dev) + ')' if dev.type == 'cuda' else f', {torch.get_num_threads()} threads'}, "
               f"{steps} timed steps per component")
    rows: list[Row] = []
    for (name, unit), value in results["optimised"].items():
        ref = results["reference"][(name, unit)]
        rows += [(f"{name} (optimised)", value, unit), (f"{name} (reference)", ref, unit)]
        if unit != "GiB" and name != ONCE and ref:
            rows.append((f"{name}: speed-up", value / ref if unit.endswith("/s") else ref / value, "x"))
    return rows, setting
