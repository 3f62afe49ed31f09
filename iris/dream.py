"""What the world model believes: a real episode beside its imagined continuation, as an animated GIF.

From a real frame, the world model is fed the actions the agent really took next and imagines the frames;
each GIF frame shows [real | tokenizer reconstruction | imagined] side by side."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from iris.agent import Agent
from iris.episodes import Episode
from iris.imagination import ImaginedWorld
from iris.rundir import atomic_write_bytes
from iris.tokenizer import float_to_frames

DREAM_STEPS = 40  # imagined steps in a run's dream.gif


@torch.no_grad()
def dream_frames(agent: Agent, episode: Episode, start: int, steps: int, seed: int) -> np.ndarray:
    """uint8 [T, H, 3W, 3]: real, reconstructed and imagined frames from `start` for `steps` actions."""
    torch.manual_seed(seed)
    device = next(agent.parameters()).device
    real = torch.from_numpy(episode.observations[start:start + steps + 1]).to(device)
    actions = torch.from_numpy(episode.actions[start:start + steps]).to(device)
    tokens = agent.tokenizer.tokenize(real)
    recon = float_to_frames(agent.tokenizer.detokenize(tokens))
    current = tokens[:1]
    world = ImaginedWorld(agent.world_model, batch=1)
    world.restart(current)
    imagined = [recon[0]]
    for t in range(len(actions)):
        current, _, _ = world.step(current, actions[t:t + 1])
        imagined.append(float_to_frames(agent.tokenizer.detokenize(current))[0])
    return torch.cat([real, recon, torch.stack(imagined)], dim=2).cpu().numpy()


def reconstructions(agent: Agent, frames: np.ndarray) -> np.ndarray:
    """uint8 [2H, N*W, 3]: real frames on top, their reconstructions below."""
    real = torch.from_numpy(frames).to(next(agent.parameters()).device)
    recon = float_to_frames(agent.tokenizer.reconstruct(real))
    rows = [torch.cat(list(x), dim=1) for x in (real, recon)]
    return torch.cat(rows, dim=0).cpu().numpy()


def save_gif(frames: np.ndarray, path: Path, scale: int = 3, fps: int = 8) -> None:
    images = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
    atomic_write_bytes(Path(path), buffer.getvalue())


def save_png(image: np.ndarray, path: Path, scale: int = 2) -> None:
    buffer = io.BytesIO()
    Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST).save(buffer, format="PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())


def write_dream(agent: Agent, episode: Episode, gif_path: Path, png_path: Path, steps: int = DREAM_STEPS, seed: int = 0) -> None:
    """The dream GIF of an episode's first `steps` actions, and 8 of its frames reconstructed."""
    save_gif(dream_frames(agent, episode, 0, min(steps, len(episode) - 1), seed), gif_path)
    picks = np.linspace(0, len(episode) - 1, num=min(8, len(episode))).astype(int)
    save_png(reconstructions(agent, episode.observations[picks]), png_path)
